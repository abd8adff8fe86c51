import math

import torch
from torch import nn

from methods.tta.base import OptimizerParams, norm_affine_params, softmax_entropy, use_test_batch_statistics


def test_softmax_entropy_matches_hand_formula():
    logits = torch.tensor([[0.0, 0.0], [0.0, math.log(3.0)], [1000.0, 0.0]])
    expected = [math.log(2.0), -(0.25 * math.log(0.25) + 0.75 * math.log(0.75)), 0.0]
    assert torch.allclose(softmax_entropy(logits), torch.tensor(expected), atol=1e-6)


def test_norm_affine_params_are_bn_gn_ln_weight_and_bias():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.GroupNorm(2, 4), nn.Flatten(), nn.LayerNorm(4), nn.Linear(4, 2))
    got = {id(p) for p in norm_affine_params(model)}
    want = {id(p) for i in (1, 2, 4) for p in (model[i].weight, model[i].bias)}
    assert got == want


def test_test_batch_statistics_leave_running_stats_untouched():
    bn = nn.BatchNorm2d(3)
    model = nn.Sequential(bn)
    before = bn.running_mean.clone()
    use_test_batch_statistics(model)
    x = torch.randn(4, 3, 5, 5) * 2 + 3
    y = model(x)
    assert torch.equal(bn.running_mean, before)
    assert torch.allclose(y.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)


def test_unknown_optimizer_is_rejected_with_the_choices():
    try:
        OptimizerParams(optimizer="adamw")
    except ValueError as err:
        assert "sgd" in str(err) and "adamw" in str(err)
    else:
        raise AssertionError("adamw accepted")
