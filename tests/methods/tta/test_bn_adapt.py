import copy

import torch
from torch import nn

from methods.tta.bn_adapt import BNAdapt
from methods.tta.source import Source
from tta_models import build_cnn, build_images


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_bn_adapt_changes_predictions_but_no_parameter():
    model = build_cnn("bn")
    x = build_images(16) * 3 + 1  # covariate shift: contrast and brightness
    source_logits = Source(copy.deepcopy(model), Source.Params(), 10).adapt(x)
    before = _state(model)
    method = BNAdapt(model, BNAdapt.Params(), 10)
    logits = method.adapt(x)
    assert (logits.argmax(1) != source_logits.argmax(1)).any()
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # running stats included
    assert method.last_stats["backward_passes"] == 0 and method.last_stats["used_frac"] == 0.0


def test_bn_adapt_prior_mixes_source_and_test_statistics():
    bn = nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([1.0, -2.0, 0.5]))
        bn.running_var.copy_(torch.tensor([4.0, 0.25, 1.0]))
        bn.weight.copy_(torch.tensor([1.5, 1.0, 0.5]))
    x = torch.randn(4, 3, 5, 5) * 2 + 3
    n, prior = 4, 12.0
    w = prior / (prior + n)
    mu = w * bn.running_mean + (1 - w) * x.mean(dim=(0, 2, 3))
    var = w * bn.running_var + (1 - w) * x.var(dim=(0, 2, 3), unbiased=False)
    expected = (x - mu[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + bn.eps) * bn.weight[None, :, None, None]
    method = BNAdapt(nn.Sequential(bn, nn.Flatten()), BNAdapt.Params(prior_strength=prior), n_classes=75)
    assert torch.allclose(method.adapt(x), expected.flatten(1), atol=1e-5)


def test_bn_adapt_limits_are_test_statistics_and_source():
    model = build_cnn("bn")
    x = build_images(8) * 3 + 1
    pure = BNAdapt(copy.deepcopy(model), BNAdapt.Params(), 10).adapt(x)
    near_zero = BNAdapt(copy.deepcopy(model), BNAdapt.Params(prior_strength=1e-9), 10).adapt(x)
    huge = BNAdapt(copy.deepcopy(model), BNAdapt.Params(prior_strength=1e12), 10).adapt(x)
    source = Source(copy.deepcopy(model), Source.Params(), 10).adapt(x)
    assert torch.allclose(pure, near_zero, atol=1e-3)
    assert torch.allclose(huge, source, atol=1e-3)


def test_bn_adapt_is_source_on_a_model_without_batchnorm():
    model = build_cnn("gn")
    x = build_images(8) * 3 + 1
    assert torch.equal(BNAdapt(copy.deepcopy(model), BNAdapt.Params(), 10).adapt(x), Source(model, Source.Params(), 10).adapt(x))
