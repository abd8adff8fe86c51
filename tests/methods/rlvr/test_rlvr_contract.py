"""The contract the RLVR protocol relies on, checked for every registered `rlvr/*` loss: a new
method file gets these tests for free."""
import dataclasses
import math

import pytest
import torch

from methods.registry import available, get
from methods.rlvr.base import LOG_KEYS, REQUIREMENTS, LossOutput, token_entropy
from rlvr_batches import random_batch

METHODS = available("rlvr")  # base.py, the shared core, is not a method
TABLE_ROWS = {"rlvr/grpo", "rlvr/kl", "rlvr/entropy_bonus", "rlvr/clip_higher", "rlvr/clip_cov", "rlvr/kl_cov", "rlvr/lp_reg"}


def _run(name: str, seed: int = 0) -> tuple[LossOutput, torch.Tensor]:
    cls = get(name)
    variant = cls(cls.Params(), generator=torch.Generator().manual_seed(seed))
    batch = random_batch(seed=1, variant=variant)
    out = variant.loss(batch)
    out.loss.backward()
    return out, batch.logits.grad


def test_every_rlvr_module_registers_its_name():
    assert TABLE_ROWS <= set(METHODS)
    for name in METHODS:
        assert get(name).registry_name == name


@pytest.mark.parametrize("name", METHODS)
def test_rlvr_loss_contract(name):
    out, grad = _run(name)
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert set(LOG_KEYS) <= set(out.logs)
    assert all(isinstance(v, float) and math.isfinite(v) for v in out.logs.values())  # the batch has a reference
    assert out.logs["loss"] == pytest.approx(out.loss.item())
    assert 0.0 <= out.logs["clip_frac"] <= 1.0 and 0.0 <= out.logs["selected_frac"] <= 1.0
    assert out.logs["entropy"] > 0 and out.logs["kl_ref"] >= 0
    assert out.selected.dtype == torch.bool and out.selected.shape == grad.shape[:2]


@pytest.mark.parametrize("name", METHODS)
def test_rlvr_loss_is_deterministic_under_a_fixed_generator(name):
    (a, grad_a), (b, grad_b) = _run(name, seed=3), _run(name, seed=3)
    assert torch.equal(a.loss, b.loss) and torch.equal(grad_a, grad_b) and torch.equal(a.selected, b.selected)
    assert a.logs == b.logs


@pytest.mark.parametrize("name", METHODS)
def test_rlvr_params_are_frozen_with_defaults(name):
    params = get(name).Params()
    assert dataclasses.is_dataclass(params)
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.aggregation = "seq_mean"
    assert all(f.default is not dataclasses.MISSING for f in dataclasses.fields(params))


@pytest.mark.parametrize("name", METHODS)
def test_rlvr_schedule_warning_is_text_or_none(name):
    for epochs, minibatches in [(1, 1), (1, 2), (2, 4)]:
        warning = get(name).schedule_warning(epochs, minibatches)
        assert warning is None or isinstance(warning, str)
    assert get(name).schedule_warning(2, 4) is None


@pytest.mark.parametrize("name", METHODS)
def test_rlvr_loss_runs_on_what_it_requires_only(name):
    """An engine hands over the full logits and the reference's log-probs only to the variants that
    ask for them (requires()); every other variant must work from logp and a detached entropy."""
    cls = get(name)
    variant = cls(cls.Params(), generator=torch.Generator().manual_seed(0))
    needs = variant.requires()
    assert needs <= set(REQUIREMENTS)
    batch = random_batch(seed=1, variant=variant)
    if "logits" not in needs:
        batch.entropy, batch.logits = token_entropy(batch.logits).detach(), None
    if "logp_ref" not in needs:
        batch.logp_ref = None
    out = variant.loss(batch)
    out.loss.backward()
    assert torch.isfinite(out.loss)
