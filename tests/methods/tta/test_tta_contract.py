"""The contract the TTA protocol relies on, checked for every registered method: a new method
file gets these tests for free."""
import copy

import pytest
import torch

from methods.registry import available, get
from methods.tta.base import norm_affine_params
from tta_models import build_cnn, build_images

METHODS = available("tta")
ADAPTING = ["tta/tent", "tta/eata", "tta/sar", "tta/deyo"]
# Filters opened up (and SAR's recovery off) so that every adapting method updates the tiny random model.
LET_THROUGH = {"tta/eata": {"d_margin": 1.01}, "tta/sar": {"reset_constant": 0.0}, "tta/deyo": {"plpd_threshold": -1.0}}
MODELS = [("bn", 1, 28), ("gn", 3, 32)]


def _run(name, norm, in_ch, size, batch_sizes, seed=0, **params):
    torch.manual_seed(seed)
    cls = get(name)
    method = cls(build_cnn(norm, in_ch=in_ch, size=size), cls.Params(**params), n_classes=10)
    method.prepare(build_images(16, in_ch, size))
    outputs, stats = [], []
    for bs in batch_sizes:
        outputs.append(method.adapt(build_images(bs, in_ch, size)))
        stats.append(dict(method.last_stats))
    return method, outputs, stats


def test_every_method_file_registers_its_name():
    assert set(ADAPTING) | {"tta/source", "tta/bn_adapt"} <= set(METHODS)
    for name in METHODS:
        assert get(name).registry_name == name


@pytest.mark.parametrize("norm,in_ch,size", MODELS)
@pytest.mark.parametrize("name", METHODS)
def test_method_contract(name, norm, in_ch, size):
    method, outputs, stats = _run(name, norm, in_ch, size, [8, 1, 8])
    for bs, logits, s in zip([8, 1, 8], outputs, stats):
        assert logits.shape == (bs, 10) and torch.isfinite(logits).all()
        assert not logits.requires_grad
        assert {"entropy_mean", "used_frac", "backward_passes"} <= set(s)
        assert 0.0 <= s["used_frac"] <= 1.0 and s["entropy_mean"] >= 0.0
        assert isinstance(s["backward_passes"], int)
    _, again, stats_again = _run(name, norm, in_ch, size, [8, 1, 8])
    assert all(torch.equal(a, b) for a, b in zip(outputs, again))
    assert stats == stats_again


@pytest.mark.parametrize("norm", ["bn", "gn"])
@pytest.mark.parametrize("name", ADAPTING)
def test_only_norm_affine_parameters_change(name, norm):
    torch.manual_seed(0)
    cls = get(name)
    model = build_cnn(norm)
    before = copy.deepcopy(model.state_dict())
    method = cls(model, cls.Params(lr=0.01, **LET_THROUGH.get(name, {})), n_classes=10)
    method.prepare(build_images(16))
    used = 0.0
    for _ in range(3):
        method.adapt(build_images(8))
        used += method.last_stats["used_frac"]
    assert used > 0
    norm_ids = {id(p) for p in norm_affine_params(model)}
    names = {n for n, p in model.named_parameters() if id(p) in norm_ids}
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items() if k not in names)  # weights and buffers
    assert any(not torch.equal(after[k], before[k]) for k in names)


@pytest.mark.parametrize("name", METHODS)
def test_reset_restores_the_model_bitwise(name):
    torch.manual_seed(0)
    cls = get(name)
    model = build_cnn("bn")
    extra = {"lr": 0.01, "plpd_threshold": -1.0} if name == "tta/deyo" else {"lr": 0.01} if name in ADAPTING else {}
    method = cls(model, cls.Params(**extra), n_classes=10)
    method.prepare(build_images(16))
    initial = copy.deepcopy(model.state_dict())
    x = build_images(8)
    torch.manual_seed(1)  # DeYO's shuffles draw from the global generator
    first = method.adapt(x)
    after_first = copy.deepcopy(model.state_dict())
    for _ in range(2):
        method.adapt(build_images(8))
    method.reset()
    assert all(torch.equal(v, initial[k]) for k, v in model.state_dict().items())
    # The same batch again gives the same predictions and the same update: the optimizer state
    # (momentum) and the method's running state (EATA's average, SAR's loss average) were reset too.
    torch.manual_seed(1)
    assert torch.equal(method.adapt(x), first)
    assert all(torch.equal(v, after_first[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("name", ADAPTING)
def test_only_norm_affine_parameters_require_grad(name):
    model = build_cnn("bn")
    get(name)(model, get(name).Params(), n_classes=10)
    norm_ids = {id(p) for p in norm_affine_params(model)}
    assert all(p.requires_grad == (id(p) in norm_ids) for p in model.parameters())
