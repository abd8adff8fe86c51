"""SAR and DeYO adapt the norm layers their reference code's collect_params adapts: not a
ResNet's layer4, not a ViT-Base's blocks 9-11 and final norm (matched by module name)."""
import pytest
import torch
from torch import nn

from entrobench.models.zoo import build_model
from methods.tta.base import is_top_layer, norm_affine_params
from methods.tta.deyo import DeYO
from methods.tta.sar import SAR
from methods.tta.tent import Tent
from tta_models import build_cnn

ALL_RELIABLE = 2.0  # entropy margins of 2 ln C: every sample passes the entropy filters


@pytest.fixture(scope="module")
def resnet50_states():
    torch.manual_seed(0)
    return {norm: build_model("resnet50", norm, 10, 3).state_dict() for norm in ("bn", "gn")}


def _resnet50(norm: str, states) -> nn.Module:
    model = build_model("resnet50", norm, 10, 3)
    model.load_state_dict(states[norm])
    return model


def _trainable_names(model: nn.Module) -> list[str]:
    return [name for name, p in model.named_parameters() if p.requires_grad]


@pytest.mark.parametrize("norm", ["bn", "gn"])
@pytest.mark.parametrize("cls", [SAR, DeYO])
def test_sar_and_deyo_adapt_86_of_resnet50s_106_norm_tensors(cls, norm, resnet50_states):
    model = _resnet50(norm, resnet50_states)
    assert len(norm_affine_params(model)) == 106  # 53 norm layers x (weight, bias)
    cls(model, cls.Params(), n_classes=10)
    names = _trainable_names(model)
    assert len(names) == 86 and not any(n.startswith("layer4.") for n in names)
    assert "bn1.weight" in names and "layer3.5.bn3.bias" in names and "layer1.0.downsample.1.weight" in names


def test_tent_still_adapts_all_106(resnet50_states):
    model = _resnet50("bn", resnet50_states)
    Tent(model, Tent.Params(), n_classes=10)
    assert len(_trainable_names(model)) == 106


@pytest.mark.parametrize("cls", [SAR, DeYO])
def test_skip_top_layers_false_adapts_every_norm_layer(cls, resnet50_states):
    model = _resnet50("gn", resnet50_states)
    cls(model, cls.Params(skip_top_layers=False), n_classes=10)
    assert len(_trainable_names(model)) == 106


@pytest.mark.parametrize("cls, params", [
    (SAR, {"e0_frac": ALL_RELIABLE, "lr": 0.1}),
    (DeYO, {"deyo_margin_frac": ALL_RELIABLE, "plpd_threshold": -2.0, "lr": 0.1}),
])
def test_an_update_leaves_layer4_as_the_source_model_has_it(cls, params, resnet50_states):
    model = _resnet50("bn", resnet50_states)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    method = cls(model, cls.Params(**params), n_classes=10)
    torch.manual_seed(0)
    method.adapt(torch.rand(4, 3, 32, 32))
    assert method.last_stats["backward_passes"] >= 1
    after = model.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert "layer3.0.bn1.weight" in changed and "bn1.bias" in changed
    assert not any(k.startswith("layer4.") for k in changed)
    assert torch.equal(after["fc.weight"], before["fc.weight"])  # the head never moves


def test_small_cnn_has_no_top_layer_names_so_every_norm_layer_is_adapted():
    model = build_model("small_cnn", "bn", 10, 1)
    SAR(model, SAR.Params(), n_classes=10)
    assert len(_trainable_names(model)) == 6  # norm1..3 x (weight, bias)
    model = build_cnn("gn")  # the method tests' Sequential CNN: modules "1", "5"
    DeYO(model, DeYO.Params(), n_classes=10)
    assert len(_trainable_names(model)) == 4


def test_vit_names_skip_blocks_9_to_11_and_the_final_norm():
    class TinyViT(nn.Module):  # timm's names: blocks.<i>.norm1 / norm2, a final "norm"
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList(nn.ModuleDict({"norm1": nn.LayerNorm(4), "norm2": nn.LayerNorm(4)}) for _ in range(12))
            self.norm = nn.LayerNorm(4)

    model = TinyViT()
    kept = {id(p) for p in norm_affine_params(model, skip_top_layers=True)}
    names = [n for n, p in model.named_parameters() if id(p) in kept]
    assert len(names) == 9 * 2 * 2  # blocks 0-8, two norms each, weight and bias
    assert not any(n.startswith(("blocks.9.", "blocks.10.", "blocks.11.", "norm.")) for n in names)
    assert is_top_layer("norm") and is_top_layer("layer4.0.bn1") and not is_top_layer("layer3.5.bn3")
