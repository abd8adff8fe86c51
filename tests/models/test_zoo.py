"""Architectures built by name: shapes, sizes, norm layers, RobustBench-compatible WRN keys."""
import pytest
import torch
from torch import nn

from entrobench.models.zoo import build_model, robustbench_state_dict


@pytest.fixture(scope="module")
def wrn():
    torch.manual_seed(0)
    return build_model("wrn28_10", "bn", 10, 3).eval()


@pytest.mark.parametrize("norm", ["bn", "gn"])
@pytest.mark.parametrize("in_channels, side", [(1, 28), (1, 32), (3, 32), (1, 16)])
def test_small_cnn_gives_logits_for_any_side_from_16(norm, in_channels, side):
    model = build_model("small_cnn", norm, 10, in_channels).eval()
    assert model(torch.rand(4, in_channels, side, side)).shape == (4, 10)


def test_small_cnn_has_the_measured_parameter_count():
    model = build_model("small_cnn", "bn", 10, 1)
    assert sum(p.numel() for p in model.parameters()) == 122_090
    norm_params = [p for m in model.modules() if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) for p in m.parameters()]
    assert sum(p.numel() for p in norm_params) == 320
    gn = build_model("small_cnn", "gn", 10, 1)
    assert sum(p.numel() for p in gn.parameters()) == 122_090


@pytest.mark.parametrize("norm, kind", [("bn", nn.BatchNorm2d), ("gn", nn.GroupNorm)])
def test_small_cnn_norm_layers_are_of_the_requested_kind(norm, kind):
    model = build_model("small_cnn", norm, 10, 1)
    norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm))]
    assert len(norms) == 3 and all(type(m) is kind for m in norms)
    if norm == "gn":
        assert all(m.num_groups == 8 for m in norms)


def test_wrn28_10_gives_logits_and_has_36_5m_parameters(wrn):
    with torch.no_grad():
        assert wrn(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert sum(p.numel() for p in wrn.parameters()) == 36_479_194
    assert all(type(m) is not nn.GroupNorm for m in wrn.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in wrn.modules()) == 25  # 2 per block x 12 + final


def test_wrn28_10_uses_robustbench_state_dict_names(wrn):
    keys = set(wrn.state_dict())
    for key in (
        "conv1.weight",
        "block1.layer.0.bn1.running_mean",
        "block1.layer.0.convShortcut.weight",  # 16 -> 160 channels
        "block2.layer.3.conv2.weight",
        "block3.layer.0.convShortcut.weight",
        "bn1.weight",
        "fc.weight",
        "fc.bias",
    ):
        assert key in keys
    assert "block1.layer.1.convShortcut.weight" not in keys  # equal widths: identity shortcut


def test_robustbench_checkpoint_with_dataparallel_prefix_loads_strictly(wrn):
    checkpoint = {"state_dict": {f"module.{k}": v for k, v in wrn.state_dict().items()}}
    fresh = build_model("wrn28_10", "bn", 10, 3)
    fresh.load_state_dict(robustbench_state_dict(checkpoint), strict=True)
    assert torch.equal(fresh.fc.weight, wrn.fc.weight)


@pytest.mark.parametrize(
    "arch, norm, match",
    [
        ("resnet50", "bn", r"unknown architecture 'resnet50' \(expected one of: small_cnn, wrn28_10\)"),
        ("small_cnn", "ln", r"small_cnn has no norm 'ln' \(expected one of: bn, gn\)"),
        ("wrn28_10", "gn", r"wrn28_10 has no norm 'gn' \(expected one of: bn\)"),
    ],
)
def test_unknown_names_raise_listing_the_allowed(arch, norm, match):
    with pytest.raises(ValueError, match=match):
        build_model(arch, norm, 10, 1)
