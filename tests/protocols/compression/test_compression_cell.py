"""The compression family end to end without the DAG: the cached teacher build, then cells of
each kind on scikit-learn digits at the cards' tiny scale (seconds), called as the engine calls
them; the cards agree with the family's schema; MNIST from the data root when it is there."""
from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace
from pathlib import Path

import pytest
import torch

from entrobench.card import load_card

from entrobench.data.sources import default_data_root
from entrobench.family import BuildRun, CellRun
from entrobench.progress import Progress
from entrobench.protocols.compression import data
from entrobench.protocols.compression.family import FAMILY, Protocol, teacher_build
from entrobench.protocols.compression.train import INIT, REWIND, TEACHER, make_teacher
from methods import registry

REPO = Path(__file__).resolve().parents[3]
CARDS = sorted((REPO / "configs" / "compression").glob("*.yaml"))
TINY = Protocol(epochs=1, teacher_epochs=2, batch_size=128, sparsities=[0.5], finetune_epochs=1, retrain_epochs=1, max_rounds=10)


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    build = teacher_build(TINY, "digits", FAMILY.datasets["digits"])
    out = tmp_path_factory.mktemp("teacher")
    summary = make_teacher(BuildRun(config=build.config, inputs={}, out=out, data_root=None, progress=Progress("teacher", 60)))
    assert summary["test"]["top1_pct"] > 50  # two epochs already learn digits
    return out


def run_cell(name: str, teacher_dir: Path, params: dict | None = None, seed: int = 0) -> dict:
    cls = registry.get(name)
    config = {"method": name, "params": dataclasses.asdict(cls.Params(**(params or {}))), "dataset": "digits",
              "setting": {"name": "x"}, "protocol": dataclasses.asdict(TINY), "seed": seed}
    return FAMILY.run_cell(CellRun(config=config, inputs={"teacher": teacher_dir}, data_root=None, method_cls=cls, progress=Progress(name, 60)))


def test_teacher_build_keeps_the_snapshots_pruning_rewinds_to(teacher_dir):
    assert all((teacher_dir / f).is_file() for f in (TEACHER, INIT, REWIND))


@pytest.mark.parametrize("name", ["compression/kd", "compression/dual_head_kd", "compression/dml"])
def test_distillation_cell_writes_its_metrics(teacher_dir, name):
    out = run_cell(name, teacher_dir)
    m = out["metrics"]
    for key in ("top1_pct", "best_top1_pct", "ece_pct", "nll", "entropy", "teacher_kl", "teacher_top1_pct"):
        assert math.isfinite(m[key]), key
    assert m["best_top1_pct"] >= m["top1_pct"] - 1e-9
    assert len(out["curves"]["test_top1_pct"]) == TINY.epochs
    assert sum(out["reliability"]["count"]) == out["data"]["n_test"] == 597
    assert out["teacher"]["online"] == (name == "compression/dml")


def test_the_same_seed_gives_the_same_student(teacher_dir):
    assert run_cell("compression/kd", teacher_dir, seed=3)["metrics"] == run_cell("compression/kd", teacher_dir, seed=3)["metrics"]


@pytest.mark.parametrize("name", ["compression/magnitude", "compression/imp", "compression/sap"])
def test_pruning_cell_reaches_the_sparsity_exactly(teacher_dir, name):
    out = run_cell(name, teacher_dir, {"gamma": 5.0} if name.endswith("sap") else None)
    m = out["metrics"]
    assert m["sparsity_s50"] == pytest.approx(0.5, abs=1e-4)
    assert m["drop_pct_s50"] == pytest.approx(m["dense_top1_pct"] - m["top1_pct_s50"])
    assert m["params_s50"] < m["dense_params"]
    assert 0 <= m["pq_index_s50"] < 1 and m["infer_ms_s50"] > 0
    assert out["not_reached"] == []


@pytest.mark.parametrize("card", CARDS, ids=lambda p: p.stem)
def test_cards_agree_with_the_family_schema(card):
    """The engine's own check (every name, type and range), and each table metric at each scale."""
    loaded = load_card(card)
    assert loaded.spec.family == "compression"
    for scale in loaded.spec.scales:
        scaled = loaded.scale(scale)
        for metric in [loaded.spec.table.metric, *loaded.spec.table.extra_metrics]:
            assert loaded.family.metric(metric, scaled) is not None, (scale, metric)


def test_per_sparsity_metrics_exist_only_for_the_protocols_sparsities():
    scaled = SimpleNamespace(protocol=Protocol())  # what the family reads of a card at one scale
    assert FAMILY.metric("top1_pct_s70", scaled) is not None
    assert FAMILY.metric("top1_pct_s80", scaled) is None
    assert FAMILY.metric("drop_pct_s50", scaled).direction == "lower"


def test_mnist_from_the_data_root_is_split_and_pooled():
    root = default_data_root()
    if root is None or not (root / "mnist_test" / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("no MNIST test set under the data root (see README: Data)")
    split = data.load("mnist", root, n_train=100, n_test=50, image_size=14)
    assert split.x_train.shape == (100, 1, 14, 14) and split.x_test.shape == (50, 1, 14, 14)
    assert split.y_train.dtype == torch.int64 and 0.0 <= float(split.x_train.min()) and float(split.x_train.max()) <= 1.0


def test_a_missing_data_root_skips_with_where_it_looked():
    from entrobench.record import Skip

    with pytest.raises(Skip, match="CIFAR-100"):
        data.load("cifar100", None)


def test_plots_draw_reliability_and_accuracy_against_sparsity(teacher_dir, tmp_path):
    from types import SimpleNamespace

    from entrobench.card import MethodEntry
    from entrobench.protocols.compression.plots import draw

    records = []
    for row, name in (("kd", "compression/kd"), ("magnitude", "compression/magnitude")):
        for seed in (0, 1):
            out = run_cell(name, teacher_dir, seed=seed)
            records.append({"status": "ok", "dataset": "digits", "method": row, "seed": seed, **out})
    card = SimpleNamespace(id="tiny_card", spec=SimpleNamespace(methods=[MethodEntry("kd", label="KD"), MethodEntry("magnitude")]))
    written = draw(card, "tiny", records, tmp_path)
    assert sorted(p.name for p in written) == ["digits-accuracy-vs-sparsity.png", "digits-reliability.png"]
    assert all(p.stat().st_size > 5000 for p in written)
