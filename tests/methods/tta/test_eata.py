import copy
import math

import pytest
import torch
import torch.nn.functional as F

from methods.tta.base import norm_affine_params, softmax_entropy, use_test_batch_statistics
from methods.tta.eata import EATA
from tta_models import build_cnn, build_images, build_passthrough

C = 10


def _onehot(*classes: int) -> torch.Tensor:
    """Inputs for the passthrough model: a one-hot row is a confident prediction of that class,
    a zero row (class -1) is the uniform prediction, entropy ln C > E0."""
    x = torch.zeros(len(classes), C, 1, 1)
    for i, c in enumerate(classes):
        if c >= 0:
            x[i, c] = 1.0
    return x


def _eta(**kw) -> EATA.Params:
    return EATA.Params(fisher_alpha=0.0, **kw)


def test_eata_drops_samples_above_e0_and_redundant_ones():
    method = EATA(build_passthrough(C), _eta(), n_classes=C)
    method.adapt(_onehot(3, -1, 5))  # no average yet: only the uniform row is dropped
    s = method.last_stats
    assert s["used_frac"] == pytest.approx(2 / 3) and s["redundant_frac"] == 0.0 and s["reliable_frac"] == pytest.approx(2 / 3)

    batch = _onehot(3, 7, -1)  # the average now points at classes 3 and 5: class 3 is redundant
    with torch.no_grad():
        logits = method.model(batch)
    reliable, keep = method.select(softmax_entropy(logits), logits.softmax(1))
    assert reliable.tolist() == [True, True, False]
    assert keep.tolist() == [False, True, False]
    method.adapt(batch)
    s = method.last_stats
    assert s["used_frac"] == pytest.approx(1 / 3) and s["redundant_frac"] == pytest.approx(1 / 3)
    assert s["backward_passes"] == 1


def test_eata_weight_is_inverse_exp_of_entropy_above_e0():
    method = EATA(build_passthrough(C), _eta(), n_classes=C)
    e0 = 0.4 * math.log(C)
    entropy = torch.tensor([0.0, 0.5, e0, 2.0])
    expected = torch.tensor([1 / math.exp(e - e0) for e in entropy.tolist()])
    assert torch.allclose(method.sample_weight(entropy), expected)


@pytest.mark.parametrize("norm", ["bn", "gn"])  # masked full-batch backward vs. re-forward of the selected samples
def test_eata_update_is_gradient_of_weighted_entropy_of_selected(norm):
    model = build_cnn(norm, logit_scale=3.0)
    reference = copy.deepcopy(model)
    use_test_batch_statistics(reference)
    x = build_images(16)
    ref_params = norm_affine_params(reference)
    logits = reference(x)
    p = logits.softmax(1)
    entropy = -(p * p.log()).sum(1)
    e0 = entropy.detach().median().item() + 1e-4  # about half the batch is reliable
    kept = entropy.detach() < e0
    assert 0 < kept.sum() < len(x)
    loss = (torch.exp(e0 - entropy[kept].detach()) * entropy[kept]).mean()
    grads = torch.autograd.grad(loss, ref_params)

    lr = 0.2
    method = EATA(model, _eta(e0_frac=e0 / math.log(C), lr=lr, momentum=0.0), n_classes=C)
    method.adapt(x)
    assert method.last_stats["used_frac"] == kept.float().mean().item()
    for q, q0, g in zip(norm_affine_params(model), ref_params, grads):
        assert torch.allclose(q, q0 - lr * g, atol=1e-6)


def test_eata_backward_only_when_a_sample_is_selected():
    method = EATA(build_passthrough(C), _eta(), n_classes=C)
    calls = []
    method.trainable[0].register_hook(lambda g: calls.append(1))
    before = [q.clone() for q in method.trainable]
    method.adapt(_onehot(-1, -1))
    assert method.last_stats["backward_passes"] == 0 and not calls
    assert all(torch.equal(a, b) for a, b in zip(before, method.trainable))
    method.adapt(_onehot(2, -1))
    assert method.last_stats["backward_passes"] == 1 and len(calls) == 1


def test_eta_has_no_fisher_term():
    method = EATA(build_cnn("bn"), _eta(), n_classes=C)
    method.prepare(build_images(20))
    assert method.fisher is None
    for _ in range(2):
        method.adapt(build_images(8))
        assert method.last_stats["fisher_loss"] == 0.0


def test_eata_fisher_is_mean_squared_gradient_and_penalizes_drift():
    model = build_cnn("bn")
    reference = copy.deepcopy(model)
    use_test_batch_statistics(reference)
    clean = build_images(10)
    ref_params = norm_affine_params(reference)
    expected = [torch.zeros_like(q) for q in ref_params]
    for chunk in clean.split(4):  # batches of 4, 4, 2
        out = reference(chunk)
        for f, g in zip(expected, torch.autograd.grad(F.cross_entropy(out, out.argmax(1)), ref_params)):
            f += g**2 / 3

    x1, x2 = build_images(8), build_images(8)  # d_margin > 1: no redundancy filter here
    lr = 0.05
    # beta such that the pull 2 * beta * F back to theta^0 is strong but below 1 per step
    beta = 0.25 / (lr * max(f.max().item() for f in expected))
    eta = EATA(copy.deepcopy(model), _eta(fisher_batch_size=4, lr=lr, d_margin=1.01), n_classes=C)
    method = EATA(model, EATA.Params(fisher_alpha=beta, fisher_batch_size=4, lr=lr, d_margin=1.01), n_classes=C)
    method.prepare(clean)
    for f, e in zip(method.fisher, expected):
        assert torch.allclose(f, e, rtol=1e-5, atol=1e-10)
    assert sum(f.sum() for f in method.fisher) > 0

    method.adapt(x1), eta.adapt(x1)
    assert method.last_stats["fisher_loss"] == 0.0  # still at the weights the Fisher was taken at
    method.adapt(x2), eta.adapt(x2)
    assert method.last_stats["used_frac"] > 0 and method.last_stats["fisher_loss"] > 0
    drift = lambda m: sum(((q - q0) ** 2).sum() for q, q0 in zip(m.trainable, ref_params))
    assert drift(method) < drift(eta)  # the regularizer holds the weights back


def test_eata_refuses_to_adapt_without_prepare():
    method = EATA(build_cnn("bn"), EATA.Params(), n_classes=C)
    with pytest.raises(RuntimeError, match="prepare"):
        method.adapt(torch.rand(4, 1, 28, 28))
