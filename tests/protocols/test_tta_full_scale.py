"""The TTA family at full scale, without a GPU: published weights chosen by the setting's norm,
the label-shift stream as the authors generate it, streams resumed mid-domain, what a cell
costs and what a card needs staged; and record paths of cells without label shift unchanged."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from entrobench.card import CardError, load_card
from entrobench.cells import cell_config, expand
from entrobench.data import sources
from entrobench.data.label_shift import label_shift_indices
from entrobench.protocols.tta.family import DATASETS, FAMILY, Protocol, Setting
from entrobench.protocols.tta.run import LABEL_SHIFT_SEED, open_domain

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"


def _card(name: str):
    return load_card(next(CONFIGS.rglob(f"{name}.yaml")), CONFIGS)


def test_a_setting_without_label_shift_keeps_the_config_it_had():
    """The fields a setting had before label_shift existed, and only those: its cells' config
    hashes, and so their record paths, are those of earlier runs."""
    plain = FAMILY.setting_config(Setting("reset_bs64"))
    assert list(plain) == ["name", "batch_size", "continual", "norm", "max_samples", "label_order"]
    shifted = FAMILY.setting_config(Setting("ls", norm="gn", label_shift=500000))
    assert shifted["label_shift"] == 500000 and shifted["label_order"] == "shuffled"
    eata = _card("eata_niu2022").scale("tiny")
    assert all("label_shift" not in cell_config(eata, c)["setting"] for c in expand(eata))


@pytest.mark.parametrize("card, setting, weights", [
    ("eata_niu2022", "reset_bs64", "resnet50_bn_torchvision_v1"),
    ("deyo_lee2024", "reset_bs64", "resnet50_bn_torchvision_v1"),
    ("deyo_lee2024", "label_shift_gn", "resnet50_gn_timm"),  # GN weights for the GN model, not the BN ones
    ("sar_niu2023", "label_shift_gn", "resnet50_gn_timm"),
    ("tent_wang2021", "reset_bs200", "wrn28_10_robustbench_standard"),
])
def test_the_source_model_loads_the_published_weights_of_the_settings_norm(card, setting, weights):
    full = _card(card).scale("full")
    dataset = full.datasets[0]
    source = FAMILY.cell_builds(full, dataset, full.setting(setting), 0)["source"]
    assert source.config["source_weights"] == weights and source.data_files == (f"models/{weights}.safetensors",)
    assert not source.heavy  # checking staged weights asks for no GPU


def test_weights_that_do_not_fit_the_setting_are_one_line(tmp_path, configs, write_card):
    gn_wrn = write_card({"protocol": {"architecture": "wrn28_10"}, "settings": [{"name": "bs64_gn", "norm": "gn"}]})
    with pytest.raises(CardError, match=r"no published weights for wrn28_10 with norm 'gn'"):
        load_card(gn_wrn, configs)
    named = write_card({"protocol": {"source_weights": "resnet50_gn_timm"}, "settings": [{"name": "bs64", "norm": "bn"}]})
    with pytest.raises(CardError, match=r"resnet50_gn_timm are resnet50/gn weights, setting bs64 builds resnet50/bn"):
        load_card(named, configs)
    with pytest.raises(CardError, match=r"source_weights must be 'train', 'published' or one of"):
        load_card(write_card({"protocol": {"source_weights": "models/imagenet/resnet50.pth"}}), configs)


def test_label_shift_needs_a_ratio_of_at_least_one_and_no_other_order():
    with pytest.raises(ValueError, match="imbalance ratio >= 1"):
        Setting("x", label_shift=0.5)
    with pytest.raises(ValueError, match="leave label_order"):
        Setting("x", label_shift=10, label_order="sorted")


# --- the stream -------------------------------------------------------------------------------------


def _imagenet_c_tree(root: Path, per_class: list[int]) -> None:
    """Solid-colour JPEGs under ImageNet-C/fog/5, class c has per_class[c] images."""
    folder = root / "ImageNet-C" / "fog" / "5"
    for c, count in enumerate(per_class):
        (folder / f"n{c:08d}").mkdir(parents=True)
        for k in range(count):
            Image.new("RGB", (224, 224), (10 * c, 5 * k, 0)).save(folder / f"n{c:08d}" / f"img_{k}.JPEG")


@pytest.fixture
def four_classes(monkeypatch, tmp_path):
    monkeypatch.setattr(sources, "IMAGENET_CLASSES", 4)
    _imagenet_c_tree(tmp_path, [3, 2, 4, 3])
    return tmp_path


def test_the_label_shift_stream_is_the_authors_over_all_images(four_classes):
    """n_test covering the corruption: the authors' indices into ImageFolder's order, as such."""
    protocol = Protocol(corruptions=["fog"], n_test=None)
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 3])
    for seed in (0, 2):
        domain = open_domain({"seed": seed}, protocol, Setting("ls", label_shift=1000), DATASETS["imagenet_c"], four_classes, {}, 0, "fog", 4)
        expected = label_shift_indices(labels, 1000, seed=LABEL_SHIFT_SEED + seed, n_classes=4)
        np.testing.assert_array_equal(domain.order, expected)
        assert len(domain.order) == 24  # twice the images
    # the same stream for every corruption (domain 7 here)
    other = open_domain({"seed": 0}, protocol, Setting("ls", label_shift=1000), DATASETS["imagenet_c"], four_classes, {}, 7, "fog", 4)
    np.testing.assert_array_equal(other.order, label_shift_indices(labels, 1000, seed=LABEL_SHIFT_SEED, n_classes=4))


def test_a_label_shift_over_a_subset_draws_from_it_in_the_datasets_order(four_classes):
    protocol = Protocol(corruptions=["fog"], n_test=8)
    domain = open_domain({"seed": 1}, protocol, Setting("ls", label_shift=1, max_samples=10), DATASETS["imagenet_c"], four_classes, {}, 0, "fog", 4)
    subset = np.sort(np.random.default_rng(sources.IMAGENET_C_ORDER_SEED).permutation(12)[:8])
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 3])
    np.testing.assert_array_equal(domain.order, subset[label_shift_indices(labels[subset], 1, seed=LABEL_SHIFT_SEED + 1, n_classes=4)][:10])
    assert set(domain.order) <= set(subset)


def test_a_resumed_domain_streams_the_batches_after_the_last_one_done(four_classes):
    """Resuming skips (batches done) x batch entries of the order: the rest comes as it would have."""
    protocol = Protocol(corruptions=["fog"], n_test=None)
    domain = open_domain({"seed": 0}, protocol, Setting("s", batch_size=5), DATASETS["imagenet_c"], four_classes, {}, 0, "fog", 4)
    whole = list(domain.batches(5, 0, 0, "cpu"))
    rest = list(domain.batches(5, 1, 1, "cpu"))  # a decoding worker, as on a cluster
    assert [len(y) for _, y in whole] == [5, 5, 2] and len(rest) == 2
    for (x1, y1), (x2, y2) in zip(whole[1:], rest):
        assert torch.equal(x1, x2) and np.array_equal(y1, y2)
    np.testing.assert_array_equal(np.concatenate([y for _, y in whole]), domain.labels[domain.order])


def test_a_set_made_here_streams_as_before():
    """Arrays corrupted here: the seeded permutation, sorted by label for label_order sorted."""
    y = np.array([3, 1, 2, 0, 1, 3, 2, 0])
    x = np.arange(8, dtype=np.float32).reshape(8, 1, 1, 1)
    protocol = Protocol(corruptions=["fog"])
    dataset = DATASETS["digits_c"]
    shuffled = open_domain({"seed": 4}, protocol, Setting("s", max_samples=6), dataset, None, {"fog": x, "y": y}, 2, "fog", 4)
    np.testing.assert_array_equal(shuffled.order, np.random.default_rng([4, 2, 1]).permutation(8)[:6])
    by_label = open_domain({"seed": 4}, protocol, Setting("s", label_order="sorted"), dataset, None, {"fog": x, "y": y}, 2, "fog", 4)
    assert y[by_label.order].tolist() == sorted(y.tolist())
    (xb, yb), = by_label.batches(64, 0, 0, "cpu")
    assert torch.equal(xb.flatten(), torch.from_numpy(by_label.order.astype(np.float32))) and np.array_equal(yb, y[by_label.order])


def test_a_missing_corruption_folder_skips_the_cell_with_its_path(tmp_path):
    from entrobench.record import Skip

    with pytest.raises(Skip, match=r"ImageNet-C not found at .*ImageNet-C/fog/5"):
        open_domain({"seed": 0}, Protocol(corruptions=["fog"]), Setting("s"), DATASETS["imagenet_c"], tmp_path, {}, 0, "fog", 1000)


# --- what a cell costs and what a card needs ---------------------------------------------------------


def test_cell_work_counts_every_corruptions_stream_and_doubles_a_label_shift():
    sar = _card("sar_niu2023").scale("full")
    work = FAMILY.cell_work(sar, "imagenet_c", sar.setting("label_shift_gn"), "tta/sar")
    assert (work.images, work.arch, work.method, work.batch_size) == (15 * 100_000, "resnet50", "tta/sar", 64)
    eata = _card("eata_niu2022").scale("full")
    assert FAMILY.cell_work(eata, "imagenet_c", eata.setting("reset_bs64"), "tta/eata").images == 15 * 50_000
    tent = _card("tent_wang2021").scale("full")
    assert FAMILY.cell_work(tent, "cifar10_c", tent.setting("reset_bs200"), "tta/tent").images == 15 * 10_000
    smoke = _card("sar_niu2023").scale("smoke")
    assert FAMILY.cell_work(smoke, "mnist_c", smoke.setting("bs1_gn"), "tta/sar").images == 5 * 200  # max_samples 200


@pytest.mark.parametrize("card, scale, needs", [
    ("eata_niu2022", "full", ["imagenet_c", "imagenet_val", "resnet50_bn_torchvision_v1"]),
    ("deyo_lee2024", "full", ["imagenet_c", "imagenet_val", "resnet50_bn_torchvision_v1", "resnet50_gn_timm"]),
    ("sar_niu2023", "full", ["imagenet_c", "imagenet_val", "resnet50_gn_timm"]),
    ("tent_wang2021", "full", ["cifar10_c", "cifar10", "wrn28_10_robustbench_standard"]),
    ("eata_niu2022", "smoke", ["mnist_test"]),  # trains its own model
    ("tent_wang2021", "tiny", []),  # scikit-learn's digits: nothing to download
])
def test_a_card_stages_its_data_and_the_weights_of_its_settings_norms(card, scale, needs):
    assert FAMILY.stage_needs(_card(card).scale(scale)) == needs


def test_the_cards_say_where_they_differ_from_the_authors_code():
    for name in ("sar_niu2023", "deyo_lee2024"):
        notes = " ".join(yaml.safe_load((CONFIGS / "tta" / f"{name}.yaml").read_text())["notes"])
        assert "outside layer4 (86 of ResNet-50's 106" in notes and "not antialiased" in notes and "0.11.2" in notes
        assert "could not be read here" in notes  # tables the card lacks are named, not guessed
    assert dataclasses.asdict(_card("sar_niu2023").scale("full").setting("label_shift_gn"))["label_shift"] == 500000
