import copy

import torch

from methods.tta.base import norm_affine_params, use_test_batch_statistics
from methods.tta.tent import Tent
from tta_models import build_cnn, build_images


def _hand_mean_entropy(logits: torch.Tensor) -> torch.Tensor:
    p = torch.exp(logits - logits.logsumexp(1, keepdim=True))
    return -(p * torch.log(p)).sum(1).mean()


def test_tent_loss_is_mean_entropy_of_returned_logits():
    model = build_cnn("bn", logit_scale=2.0)
    reference = copy.deepcopy(model)
    use_test_batch_statistics(reference)
    x = build_images(8)
    with torch.no_grad():
        expected_logits = reference(x)
    method = Tent(model, Tent.Params(), n_classes=10)
    logits = method.adapt(x)
    assert torch.allclose(logits, expected_logits, atol=1e-6)
    assert abs(method.last_stats["loss"] - _hand_mean_entropy(expected_logits).item()) < 1e-6
    assert abs(method.last_stats["entropy_mean"] - method.last_stats["loss"]) < 1e-6
    assert method.last_stats["used_frac"] == 1.0 and method.last_stats["backward_passes"] == 1


def test_tent_step_follows_the_gradient_of_mean_entropy():
    model = build_cnn("gn", logit_scale=2.0)
    reference = copy.deepcopy(model)
    x = build_images(8)
    ref_params = norm_affine_params(reference)
    grads = torch.autograd.grad(_hand_mean_entropy(reference(x)), ref_params)
    lr = 0.1
    method = Tent(model, Tent.Params(optimizer="sgd", lr=lr, momentum=0.0), n_classes=10)
    method.adapt(x)
    for p, p0, g in zip(norm_affine_params(model), ref_params, grads):
        assert torch.allclose(p, p0 - lr * g, atol=1e-6)
