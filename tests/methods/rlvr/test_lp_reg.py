"""Lp-Reg on hand-made tensors: the min-p proxy, which tokens it regularizes, and the loss and
gradient of a selected token computed by hand."""
from __future__ import annotations

import math

import pytest
import torch

from methods.rlvr.base import PolicyBatch
from methods.rlvr.lp_reg import LpReg, proxy_logp, select_low_probability


def _batch(probs, tokens, advantages, rollout=None):
    """Sequences of positions with the given next-token distributions; on-policy (logp_old = logp).
    `rollout` (a variant): its rollout features from these same distributions, as sampled."""
    logits = torch.tensor(probs, dtype=torch.float64).log().requires_grad_(True)
    logp = logits.log_softmax(-1).gather(-1, torch.tensor(tokens)[..., None]).squeeze(-1)
    features = rollout.rollout_features(logits.detach(), torch.tensor(tokens)) if rollout is not None else {}
    return PolicyBatch(logp=logp, logp_old=logp.detach().clone(), advantages=torch.tensor(advantages, dtype=torch.float64),
                       mask=torch.ones_like(logp, dtype=torch.bool), logits=logits, rollout=features)


def current(**params) -> LpReg:
    """Lp-Reg with the proxy of the policy being updated (proxy: current)."""
    return LpReg(LpReg.Params(proxy="current", **params))


def test_the_proxy_drops_tokens_under_kappa_times_the_top_and_renormalizes_the_rest():
    logits = torch.tensor([[[0.5, 0.3, 0.19, 0.01]]]).log()
    logp = logits.log_softmax(-1)[0, 0]
    got = proxy_logp(logits.expand(1, 4, 4), logp[None, :], kappa=0.05)  # floor 0.025: the 0.01 token goes
    assert torch.allclose(got[0, :3], torch.tensor([0.5, 0.3, 0.19]).div(0.99).log())
    assert got[0, 3] == -math.inf


def test_selection_is_the_lowest_logp_share_of_negative_advantage_tokens_and_needs_two():
    logp = torch.tensor([[-0.1, -3.0, -0.2], [-2.0, -0.5, -4.0], [-5.0, -6.0, -0.3]])
    advantages = torch.tensor([-1.0, -1.0, 1.0])  # the third sequence's tokens are never candidates
    mask = torch.tensor([[True, True, True], [True, True, False], [True, True, True]])  # -4.0 is padding
    picked = select_low_probability(logp, advantages, mask, frac=0.5)  # 5 candidates -> 2
    assert picked.nonzero().tolist() == [[0, 1], [1, 0]]  # -3.0 and -2.0
    assert not select_low_probability(logp, advantages, mask, frac=0.3).any()  # int(1.5) = 1 < 2: the reference's rule


def test_a_selected_token_is_pulled_toward_the_proxy_and_a_dropped_one_is_not():
    # second sequence (A < 0): token 1 (p 0.35) is kept by the proxy (floor 0.06), token 2 (p 0.05) is noise
    probs = [[[0.6, 0.35, 0.05], [0.6, 0.35, 0.05]], [[0.6, 0.35, 0.05], [0.6, 0.35, 0.05]]]
    batch = _batch(probs, tokens=[[0, 0], [1, 2]], advantages=[1.0, -1.0])
    out = current(neg_frac=1.0, kappa=0.1).loss(batch)
    assert out.selected.tolist() == [[False, False], [True, False]]

    out.loss.backward()
    grad = batch.logits.grad  # d loss / d logits, through logp = log_softmax(logits)[token]
    x = -math.log(0.95)  # log pi_proxy - log pi of the selected token
    k3 = math.exp(x) - x - 1
    # token_mean over 4 tokens; on-policy r = 1, so each token's loss is -A, plus k3 on the selected one
    assert out.logs["pg_loss"] == pytest.approx((-1 - 1 + 1 + 1 + k3) / 4)
    # d loss_t / d logp_t: -r A for a plain token, -r A - exp(x) + 1 for the selected one (pulled up)
    d_plain, d_selected = 1.0, 1.0 - math.exp(x) + 1.0
    one_hot = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    p = torch.tensor([0.6, 0.35, 0.05], dtype=torch.float64)
    assert torch.allclose(grad[1, 0], d_selected / 4 * (one_hot - p))
    assert torch.allclose(grad[1, 1], d_plain / 4 * (torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64) - p))


def test_kappa_zero_keeps_every_token_so_nothing_is_below_its_proxy():
    batch = _batch([[[0.6, 0.35, 0.05]] * 2] * 2, tokens=[[0, 1], [1, 2]], advantages=[-1.0, -1.0])
    assert not current(neg_frac=1.0, kappa=0.0).loss(batch).selected.any()


def test_defaults_are_the_recipes_and_each_proxy_says_what_it_needs():
    p = LpReg.Params()
    assert (p.neg_frac, p.kappa, p.kl_coef, p.eps_low, p.eps_high, p.proxy, p.kl_clamp) == (0.01, 0.02, 1.0, 1.0, 9.0, "rollout", True)
    assert LpReg(p).requires() == {"rollout_logits"} and current().requires() == {"logits"}
    batch = _batch([[[0.6, 0.35, 0.05]]], tokens=[[1]], advantages=[-1.0])
    with pytest.raises(ValueError, match="rollout_features"):
        LpReg(p).loss(batch)  # no features computed at rollout
    batch.logits = None
    batch.entropy = torch.zeros_like(batch.logp)
    with pytest.raises(ValueError, match="logits"):
        current().loss(batch)
    with pytest.raises(ValueError, match="proxy must be one of"):
        LpReg.Params(proxy="old")


def test_the_rollout_proxy_is_the_sampling_policys_and_stays_put_while_the_policy_moves():
    """proxy: rollout (the recipes' minp_old_log_prob): the target comes from the distribution the
    tokens were sampled from, so a later minibatch, whose policy has moved, pulls toward the same
    target; proxy: current follows the moved policy."""
    sampled = [[[0.6, 0.35, 0.05], [0.6, 0.35, 0.05]], [[0.6, 0.35, 0.05], [0.6, 0.35, 0.05]]]
    moved = [[[0.6, 0.35, 0.05], [0.6, 0.35, 0.05]], [[0.3, 0.3, 0.4], [0.6, 0.35, 0.05]]]
    tokens, advantages = [[0, 0], [1, 2]], [1.0, -1.0]
    rollout = LpReg(LpReg.Params(neg_frac=1.0, kappa=0.1))
    old = _batch(sampled, tokens, advantages, rollout=rollout)
    assert torch.allclose(old.rollout["proxy_logp"][1], torch.tensor([math.log(0.35 / 0.95), -math.inf], dtype=torch.float64))
    later = _batch(moved, tokens, advantages)
    later.rollout = old.rollout
    later.logp_old = old.logp.detach()  # off-policy now: the ratio is 0.3 / 0.35 on the selected token
    out = rollout.loss(later)
    assert out.selected.tolist() == [[False, False], [True, False]]
    x = math.log(0.35 / 0.95) - math.log(0.3)  # log pi_proxy(rollout) - log pi(moved)
    k3 = math.exp(x) - x - 1
    # tokens: two with A = +1 at r = 1, the selected one -r A + k3, the dropped one at r = 1 with A = -1
    assert out.logs["pg_loss"] == pytest.approx((-1 - 1 + (0.3 / 0.35 + k3) + 1) / 4)
    # the current policy keeps every token at that position (floor 0.04): its proxy is the policy, no pull
    assert not current(neg_frac=1.0, kappa=0.1).loss(later).selected[1, 0]
