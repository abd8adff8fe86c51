import copy

import torch

from methods.tta.base import norm_affine_params
from methods.tta.sar import SAR
from tta_models import build_cnn, build_images

C = 10
ALL_RELIABLE = 2.0  # E0 = 2 ln C: above any entropy, so both filters keep every sample


def _mean_entropy(logits: torch.Tensor) -> torch.Tensor:
    p = logits.softmax(1)
    return -(p * p.log()).sum(1).mean()


def test_sar_takes_two_backward_passes_per_update():
    method = SAR(build_cnn("gn"), SAR.Params(e0_frac=ALL_RELIABLE), n_classes=C)
    calls = []
    method.trainable[0].register_hook(lambda g: calls.append(1))
    method.adapt(build_images(8))
    assert len(calls) == 2 and method.last_stats["backward_passes"] == 2
    assert method.last_stats["used_frac"] == 1.0


def test_sar_step_uses_the_gradient_at_the_perturbed_weights():
    model = build_cnn("gn", logit_scale=3.0)
    reference = copy.deepcopy(model)
    x = build_images(8)
    rho, lr = 0.5, 0.1
    params = norm_affine_params(reference)
    g1 = torch.autograd.grad(_mean_entropy(reference(x)), params)
    norm = torch.sqrt(sum((g**2).sum() for g in g1))
    with torch.no_grad():
        for p, g in zip(params, g1):
            p.add_(rho * g / norm)  # Eq. 4
    g2 = torch.autograd.grad(_mean_entropy(reference(x)), params)
    with torch.no_grad():
        for p, g in zip(params, g1):
            p.sub_(rho * g / norm)
    assert any(not torch.allclose(a, b, atol=1e-4) for a, b in zip(g1, g2))  # the perturbation matters

    method = SAR(model, SAR.Params(e0_frac=ALL_RELIABLE, rho=rho, lr=lr, momentum=0.0), n_classes=C)
    method.adapt(x)
    for p, p0, g in zip(norm_affine_params(model), params, g2):
        assert torch.allclose(p, p0 - lr * g, atol=1e-6)


def test_sar_recovers_when_the_loss_average_drops_below_reset_constant():
    model = build_cnn("gn")
    initial = copy.deepcopy(model.state_dict())
    method = SAR(model, SAR.Params(e0_frac=ALL_RELIABLE, lr=0.1, reset_constant=100.0), n_classes=C)
    method.adapt(build_images(8))
    assert method.last_stats["reset"] == 1.0 and method.last_stats["backward_passes"] == 2
    assert all(torch.equal(v, initial[k]) for k, v in model.state_dict().items())

    method = SAR(copy.deepcopy(model), SAR.Params(e0_frac=ALL_RELIABLE, lr=0.1, reset_constant=0.0), n_classes=C)
    method.adapt(build_images(8))
    assert method.last_stats["reset"] == 0.0
    assert any(not torch.equal(v, initial[k]) for k, v in method.model.state_dict().items())


def test_sar_skips_the_update_when_no_sample_is_reliable():
    model = build_cnn("gn")
    initial = copy.deepcopy(model.state_dict())
    method = SAR(model, SAR.Params(e0_frac=1e-9), n_classes=C)
    method.adapt(build_images(8))
    assert method.last_stats["backward_passes"] == 0 and method.last_stats["used_frac"] == 0.0
    assert all(torch.equal(v, initial[k]) for k, v in model.state_dict().items())
