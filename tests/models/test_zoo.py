"""Architectures built by name: shapes, sizes, norm layers, state-dict keys that match RobustBench
(WRN-28-10), torchvision (ResNet-50, BN) and timm (ResNet-50, GN)."""
import pytest
import torch
from torch import nn

from entrobench.models.zoo import IMAGENET_MEAN, IMAGENET_STD, build_model, robustbench_state_dict

BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


@pytest.fixture(scope="module")
def wrn():
    torch.manual_seed(0)
    return build_model("wrn28_10", "bn", 10, 3).eval()


@pytest.fixture(scope="module")
def resnet50_bn():  # built once: 25.6M parameters
    torch.manual_seed(0)
    return build_model("resnet50", "bn", 1000, 3).eval()


@pytest.fixture(scope="module")
def resnet50_gn():
    torch.manual_seed(0)
    return build_model("resnet50", "gn", 1000, 3).eval()


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


def test_wrn28_10_takes_unit_range_images_with_no_normalization_inside(wrn):
    # RobustBench's Standard is a plain WideResNet(28, 10) fed uint8 / 255: the only buffers are BN statistics
    assert {name.rsplit(".", 1)[-1] for name, _ in wrn.named_buffers()} == set(BN_BUFFERS)


def test_robustbench_checkpoint_with_dataparallel_prefix_loads_strictly(wrn):
    checkpoint = {"state_dict": {f"module.{k}": v for k, v in wrn.state_dict().items()}}
    fresh = build_model("wrn28_10", "bn", 10, 3)
    fresh.load_state_dict(robustbench_state_dict(checkpoint), strict=True)
    assert torch.equal(fresh.fc.weight, wrn.fc.weight)


# torchvision resnet50().state_dict(): 53 convs, 53 BNs (weight, bias + 3 buffers), fc
TORCHVISION_RESNET50_KEYS = (
    "conv1.weight",
    "bn1.weight",
    "bn1.running_var",
    "layer1.0.conv1.weight",
    "layer1.0.bn3.bias",
    "layer1.0.downsample.0.weight",  # 64 -> 256 channels
    "layer1.0.downsample.1.running_mean",
    "layer2.3.conv2.weight",
    "layer3.5.bn2.num_batches_tracked",
    "layer4.0.downsample.1.weight",
    "layer4.2.bn3.weight",
    "fc.weight",
    "fc.bias",
)


def test_resnet50_bn_has_torchvisions_state_dict_keys_and_size(resnet50_bn):
    state = resnet50_bn.state_dict()
    assert all(key in state for key in TORCHVISION_RESNET50_KEYS)
    assert "layer1.1.downsample.0.weight" not in state and "layer2.0.downsample.0.weight" in state
    assert len(state) == 320 and sum(p.numel() for p in resnet50_bn.parameters()) == 25_557_032  # torchvision's counts
    assert state["layer2.0.conv2.weight"].shape == (128, 128, 3, 3) and state["fc.weight"].shape == (1000, 2048)
    assert resnet50_bn.layer2[0].conv2.stride == (2, 2)  # v1.5: the 3x3 conv downsamples, not the first 1x1


def test_resnet50_gn_is_timms_resnet50_gn(resnet50_bn, resnet50_gn):
    norms = [m for m in resnet50_gn.modules() if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm))]
    assert len(norms) == 53 and all(type(m) is nn.GroupNorm and m.num_groups == 32 and m.eps == 1e-5 for m in norms)
    # timm's keys are torchvision's without the BN statistics
    bn_params = {k for k in resnet50_bn.state_dict() if not k.endswith(BN_BUFFERS)}
    assert set(resnet50_gn.state_dict()) == bn_params
    assert sum(p.numel() for p in resnet50_gn.parameters()) == 25_557_032


@pytest.mark.parametrize("norm", ["bn", "gn"])
def test_resnet50_gives_logits_on_small_images(norm, resnet50_bn, resnet50_gn):
    model = resnet50_bn if norm == "bn" else resnet50_gn
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 1000) and torch.isfinite(out).all()


def test_resnet50_normalizes_unit_range_input_inside_forward(resnet50_bn):
    seen = []
    handle = resnet50_bn.conv1.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    x = torch.rand(2, 3, 32, 32)
    try:
        with torch.no_grad():
            resnet50_bn(x)
    finally:
        handle.remove()
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(seen[0], (x - mean) / std)
    # non-persistent: not in the state dict, so a published (torchvision) state dict loads strictly
    assert not any(k.startswith("input_") for k in resnet50_bn.state_dict())
    published = {k: v.clone() for k, v in resnet50_bn.state_dict().items()}  # a plain state dict, as torchvision ships
    resnet50_bn.load_state_dict(robustbench_state_dict(published), strict=True)


@pytest.mark.parametrize(
    "arch, norm, match",
    [
        ("resnet18", "bn", r"unknown architecture 'resnet18' \(expected one of: small_cnn, wrn28_10, resnet50\)"),
        ("small_cnn", "ln", r"small_cnn has no norm 'ln' \(expected one of: bn, gn\)"),
        ("wrn28_10", "gn", r"wrn28_10 has no norm 'gn' \(expected one of: bn\)"),
        ("resnet50", "ln", r"resnet50 has no norm 'ln' \(expected one of: bn, gn\)"),
    ],
)
def test_unknown_names_raise_listing_the_allowed(arch, norm, match):
    with pytest.raises(ValueError, match=match):
        build_model(arch, norm, 10, 1)


def test_resnet50_refuses_other_than_rgb_input():
    with pytest.raises(ValueError, match=r"resnet50 normalizes with the ImageNet RGB mean/std: in_channels must be 3, got 1"):
        build_model("resnet50", "bn", 10, 1)
