"""The PINN family through the contract: its schema and checks, the cached reference builds, and
run_cell on tiny configs (metrics, curves, the field figure, skips)."""
import dataclasses

import numpy as np
import pytest

from entrobench.data.sources import default_data_root
from entrobench.family import BuildRun, CellRun
from entrobench.progress import Progress
from entrobench.protocols.pinn.family import FAMILY, Protocol, Setting
from entrobench.protocols.pinn.reference import load_reference, make_reference
from entrobench.record import Skip
from methods import registry

TINY = Protocol(iterations=4, n_t=4, n_x=8, n_initial=16, n_boundary=4, width=8, depth=2, harmonics=2, log_every=2)


def _build(tmp_path, dataset, setting):
    build = FAMILY.cell_builds(None, dataset, setting, 0)["reference"]
    out = tmp_path / build.path
    if not (out / "reference.npz").is_file():
        out.mkdir(parents=True)
        make_reference(BuildRun(config=build.config, inputs={}, out=out, data_root=None, progress=Progress("test")))
    return out


def _run(tmp_path, method, dataset="convection", coefficients=None, data_root=None, **protocol):
    setting = Setting("s", coefficients or {})
    cls = registry.get(f"pinn/{method}")
    config = {"method": f"pinn/{method}", "params": dataclasses.asdict(cls.Params()), "dataset": dataset,
              "setting": dataclasses.asdict(setting), "protocol": dataclasses.asdict(dataclasses.replace(TINY, **protocol)), "seed": 0}
    run = CellRun(config=config, inputs={"reference": _build(tmp_path, dataset, setting)}, data_root=data_root,
                  method_cls=cls, progress=Progress("test"), artifact_dir=tmp_path / "artifacts" / method)
    return FAMILY.run_cell(run), run


def test_a_tiny_cell_writes_metrics_curves_and_the_field_figure(tmp_path):
    result, run = _run(tmp_path, "vanilla", coefficients={"beta": 10})
    metrics = result["metrics"]
    assert {"rel_l2", "train_s", "iterations"} <= set(metrics) and metrics["iterations"] == 4
    assert 0 < metrics["rel_l2"] < 10 and metrics["train_s"] > 0
    assert result["curves"]["iteration"] == [1, 2, 4] and len(result["curves"]["loss"]) == 3
    assert result["artifacts"] == ["field.png"]
    assert (run.artifact_dir / "field.png").read_bytes()[:4] == b"\x89PNG"


def test_causal_cells_report_the_min_weight(tmp_path):
    metrics = _run(tmp_path, "causal")[0]["metrics"]
    assert 0 <= metrics["min_causal_weight"] <= 1 and metrics["final_epsilon"] == 100.0


def test_lagrangian_pinn_is_skipped_where_nothing_is_transported(tmp_path):
    with pytest.raises(Skip, match="velocity"):
        _run(tmp_path, "lpinn", dataset="allen_cahn")


def test_a_gpu_protocol_is_skipped_on_a_node_without_one(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this node has a GPU")
    with pytest.raises(Skip, match="GPU"):
        _run(tmp_path, "vanilla", device="cuda")


def test_allen_cahn_is_also_measured_against_the_published_solution(tmp_path):
    root = default_data_root()
    if root is None or not (root / "pinns_raissi" / "AC.mat").is_file():
        pytest.skip(f"AC.mat is not under the data root ({root}); set ENTROBENCH_DATA_ROOT to run this")
    metrics = _run(tmp_path, "vanilla", dataset="allen_cahn", data_root=root)[0]["metrics"]
    assert abs(metrics["rel_l2_published"] - metrics["rel_l2"]) < 1e-3  # the two references agree to 8e-6


def test_references_are_shared_by_methods_and_seeds_and_split_by_coefficients(tmp_path):
    beta50 = FAMILY.cell_builds(None, "convection", Setting("b", {"beta": 50}), 0)["reference"]
    again = FAMILY.cell_builds(None, "convection", Setting("other_name", {"beta": 50.0}), 3)["reference"]
    beta30 = FAMILY.cell_builds(None, "convection", Setting("b", {"beta": 30}), 0)["reference"]
    assert beta50.path == again.path != beta30.path and "convection-beta50-" in beta50.path
    x, t, u = load_reference(_build(tmp_path, "convection", Setting("b", {"beta": 50})))
    assert u.shape == (len(t), len(x)) == (100, 256) and np.allclose(u[:, 0], np.sin(-50 * t))


def test_check_names_a_coefficient_the_equation_does_not_have():
    scaled = dataclasses.make_dataclass("Scaled", ["datasets", "settings"])(["convection", "burgers"], [Setting("b50", {"beta": 50})])
    with pytest.raises(ValueError, match=r"settings.b50.coefficients.beta: burgers has no such coefficient \(it has: nu\)"):
        FAMILY.check(scaled)


@pytest.mark.parametrize("bad", [{"dtype": "bfloat16"}, {"device": "tpu"}, {"collocation": "sobol"}, {"n_t": 0}])
def test_protocol_refuses_what_it_cannot_run(bad):
    with pytest.raises(ValueError):
        Protocol(**bad)
