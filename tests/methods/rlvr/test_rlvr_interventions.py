"""The entropy interventions on fixed tensors: KL, entropy bonus, clip-higher, Clip-Cov, KL-Cov."""
import math

import pytest
import torch

from methods.rlvr.clip_cov import ClipCov
from methods.rlvr.clip_higher import ClipHigher
from methods.rlvr.entropy_bonus import EntropyBonus
from methods.rlvr.grpo import GRPO
from methods.rlvr.base import PolicyBatch, masked_mean, token_covariance, token_entropy
from methods.rlvr.kl import KLPenalty
from methods.rlvr.kl_cov import KLCov, kl_cov_needs_off_policy
from rlvr_batches import hand_batch, random_batch


def _hand_cov(logp: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(logp - mean logp)(A - mean A) over response tokens, written out without the core."""
    lp = logp.detach()[mask]
    a = adv[:, None].expand_as(logp)[mask]
    cov = torch.zeros_like(logp.detach())
    cov[mask] = (lp - lp.sum() / lp.numel()) * (a - a.sum() / a.numel())
    return cov


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- KL to the reference

def test_kl_adds_beta_times_mean_k3_to_the_surrogate():
    logp, ref = [[0.0, math.log(0.5)]], [[math.log(0.5), 0.0]]
    # ratio 1 (logp_old = logp): surrogate = -A = -1 per token; k3 = (1/2 + log 2 - 1) and (2 - log 2 - 1)
    out = KLPenalty(KLPenalty.Params(beta=0.5)).loss(hand_batch(logp, logp, [1.0], logp_ref=ref))
    k3_mean = ((0.5 + math.log(2) - 1) + (2 - math.log(2) - 1)) / 2
    assert out.loss.item() == pytest.approx(-1.0 + 0.5 * k3_mean)
    assert out.logs["kl_ref"] == pytest.approx(k3_mean)
    assert out.logs["pg_loss"] == pytest.approx(-1.0)


def test_kl_clamp_option_bounds_a_runaway_token_as_verl_does():
    logp, ref = [[-30.0, 0.0]], [[0.0, 0.0]]  # one token the policy all but ruled out: k3 = e^30 - 31
    plain = KLPenalty(KLPenalty.Params(beta=1.0)).loss(hand_batch(logp, logp, [0.0], logp_ref=ref))
    clamped = KLPenalty(KLPenalty.Params(beta=1.0, kl_clamp=True)).loss(hand_batch(logp, logp, [0.0], logp_ref=ref))
    assert plain.loss.item() == pytest.approx((math.exp(30) - 31) / 2)
    assert clamped.loss.item() == pytest.approx(10.0 / 2)  # log-ratio to 20, estimate to 10, then the token mean


def test_kl_without_a_reference_is_an_error_not_a_silent_zero():
    with pytest.raises(ValueError, match="logp_ref"):
        KLPenalty(KLPenalty.Params()).loss(hand_batch([[0.0]], [[0.0]], [1.0]))


def test_kl_gradient_descent_moves_logp_toward_ref():
    batch = hand_batch([[-1.0, -3.0]], [[-1.0, -3.0]], [0.0], logp_ref=[[-2.0, -2.0]])
    KLPenalty(KLPenalty.Params(beta=1.0)).loss(batch).loss.backward()
    # logp above ref -> gradient positive (descent lowers it); below ref -> negative
    assert batch.logp.grad[0, 0] > 0 and batch.logp.grad[0, 1] < 0


# ---------------------------------------------------------------- entropy bonus

def _entropy_batch(advantages):
    g = _gen(3)
    logits = (3.0 * torch.randn(4, 3, 5, generator=g)).requires_grad_(True)
    tokens = torch.randint(5, (4, 3), generator=g)
    logp = logits.log_softmax(-1).gather(-1, tokens[..., None]).squeeze(-1)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]], dtype=torch.bool)
    return logits, PolicyBatch(logp=logp, logp_old=logp.detach(), advantages=advantages, mask=mask, logits=logits)


def test_entropy_bonus_gradient_step_increases_entropy():
    logits, batch = _entropy_batch(torch.zeros(4))  # no advantage: the bonus is the only gradient
    out = EntropyBonus(EntropyBonus.Params(coef=0.1)).loss(batch)
    out.loss.backward()
    assert logits.grad.abs().sum() > 0
    with torch.no_grad():
        before = masked_mean(token_entropy(logits), batch.mask)
        after = masked_mean(token_entropy(logits - 0.5 * logits.grad), batch.mask)
    assert after > before


def test_entropy_bonus_subtracts_coef_times_mean_entropy():
    adv = torch.tensor([1.0, -1.0, 0.5, -0.5])
    _, batch = _entropy_batch(adv)
    plain = GRPO(GRPO.Params()).loss(batch)
    bonus = EntropyBonus(EntropyBonus.Params(coef=0.05)).loss(batch)
    assert bonus.loss.item() == pytest.approx(plain.loss.item() - 0.05 * bonus.logs["entropy"], abs=1e-6)


def test_entropy_bonus_refuses_a_detached_entropy():
    _, batch = _entropy_batch(torch.zeros(4))
    batch.entropy = token_entropy(batch.logits).detach()
    with pytest.raises(ValueError, match="carries the gradient"):
        EntropyBonus(EntropyBonus.Params()).loss(batch)


# ---------------------------------------------------------------- clip-higher

def test_clip_higher_clips_the_upper_side_later_and_the_lower_side_the_same():
    # r = 1.25, 1.3 with A = +1; r = 0.75, 0.7 with A = -1
    ratios, adv = [1.25, 1.3, 0.75, 0.7], [1.0, 1.0, -1.0, -1.0]
    batch = lambda: hand_batch([[math.log(r)] for r in ratios], [[0.0]] * 4, adv)  # noqa: E731
    grpo, higher = GRPO(GRPO.Params()), ClipHigher(ClipHigher.Params())
    assert (higher.params.eps_low, higher.params.eps_high) == (0.2, 0.28)
    g = grpo.token_loss(batch(), None)
    h = higher.token_loss(batch(), None)
    # upper side: GRPO caps both at 1.2; clip-higher lets 1.25 through and caps 1.3 at 1.28
    assert g.loss.squeeze(1)[:2].tolist() == pytest.approx([-1.2, -1.2])
    assert h.loss.squeeze(1)[:2].tolist() == pytest.approx([-1.25, -1.28])
    # lower side: both floor the ratio at 0.8, so -min(-r, -0.8) = 0.8
    assert g.loss.squeeze(1)[2:].tolist() == pytest.approx([0.8, 0.8])
    assert h.loss.squeeze(1)[2:].tolist() == pytest.approx([0.8, 0.8])
    assert g.clipped.squeeze(1).tolist() == [True, True, True, True]
    assert h.clipped.squeeze(1).tolist() == [False, True, True, True]
    assert higher.loss(batch()).logs["clip_frac"] == pytest.approx(0.75)


# ---------------------------------------------------------------- Clip-Cov

def _cov_batch(seed=0, lengths=(5, 3, 4, 2, 5, 1)):
    g = _gen(seed)
    b, t = len(lengths), max(lengths)
    logp = (-3.0 * torch.rand(b, t, generator=g, dtype=torch.float64)).requires_grad_(True)
    mask = torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]
    adv = torch.tensor([2.0, -2.0, 1.0, -1.0, 0.5, -0.5], dtype=torch.float64)[:b]
    return PolicyBatch(logp=logp, logp_old=logp.detach().clone(), advantages=adv, mask=mask, entropy=torch.zeros_like(logp))


def test_clip_cov_detaches_exactly_the_selected_tokens_and_no_others():
    batch = _cov_batch()
    n = int(batch.mask.sum())  # 20 response tokens
    params = ClipCov.Params(detach_frac=0.25, cov_lb=0.0, cov_ub=100.0, eps_low=0.2, eps_high=0.2)
    out = ClipCov(params, generator=_gen(1)).loss(batch)
    cov = _hand_cov(batch.logp, batch.advantages, batch.mask)
    band = batch.mask & (cov > 0.0) & (cov < 100.0)
    assert band.sum() > 5  # a random choice, not the whole band
    assert out.selected.sum() == 5 == math.floor(0.25 * n)
    assert not (out.selected & ~band).any()
    out.loss.backward()
    # ratio 1: a kept token's gradient is -A / n (token mean); a detached or padding token's is 0
    expected = torch.where(batch.mask & ~out.selected, -batch.advantages[:, None] / n, torch.zeros_like(batch.logp))
    assert torch.allclose(batch.logp.grad, expected)
    assert (batch.logp.grad[batch.mask & ~out.selected] != 0).all()
    assert out.logs["selected_frac"] == pytest.approx(5 / n)


def test_clip_cov_with_detach_frac_one_detaches_the_whole_band_minus_ppo_clipped_tokens():
    batch = _cov_batch()
    cov = _hand_cov(batch.logp, batch.advantages, batch.mask)
    # Push one in-band token of a positive-advantage sequence to ratio e^2 > 1 + eps_high = 2: the
    # PPO clip already silences it. (With eps_low = 1 a negative-advantage token is never clipped.)
    b, t = ((cov > 0.5) & (batch.advantages[:, None] > 0)).nonzero()[0].tolist()
    batch.logp_old[b, t] -= 2.0
    params = ClipCov.Params(detach_frac=1.0, cov_lb=0.5, cov_ub=100.0)
    out = ClipCov(params, generator=_gen(0)).loss(batch)
    band = batch.mask & (cov > 0.5) & (cov < 100.0)
    band[b, t] = False
    assert out.logs["clip_frac"] > 0
    assert torch.equal(out.selected, band)


def test_clip_cov_candidates_lie_strictly_inside_the_band():
    batch = _cov_batch()
    # the method's own covariance (checked by hand in test_rlvr_core), so the bounds hit it exactly
    cov = token_covariance(batch.logp, batch.advantages, batch.mask)
    positive = cov[cov > 0].sort().values
    low, high = positive[1].item(), positive[-2].item()  # bounds equal to two tokens' covariances
    out = ClipCov(ClipCov.Params(detach_frac=1.0, cov_lb=low, cov_ub=high), generator=_gen(0)).loss(batch)
    expected = batch.mask & (cov > low) & (cov < high)
    assert 0 < expected.sum() < (cov > 0).sum() - 2
    assert torch.equal(out.selected, expected)  # the tokens at exactly low and high are left out


def test_clip_cov_selection_follows_the_generator():
    params = ClipCov.Params(detach_frac=0.1, cov_lb=0.0, cov_ub=100.0)
    pick = lambda seed: ClipCov(params, generator=_gen(seed)).loss(_cov_batch()).selected  # noqa: E731
    assert torch.equal(pick(7), pick(7))
    # 2 of the 9 in-band tokens: five seeds drawing the same pair would mean the generator is ignored
    assert len({tuple(pick(seed).flatten().nonzero().flatten().tolist()) for seed in range(5)}) > 1


def test_clip_cov_needs_a_generator():
    with pytest.raises(ValueError, match="generator"):
        ClipCov(ClipCov.Params())


def test_clip_cov_defaults_are_the_papers_and_reject_an_empty_band():
    p = ClipCov.Params()
    assert (p.detach_frac, p.cov_lb, p.cov_ub, p.eps_low, p.eps_high) == (2e-4, 1.0, 5.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="cov_lb must be < cov_ub"):
        ClipCov.Params(cov_lb=5.0, cov_ub=1.0)


# ---------------------------------------------------------------- KL-Cov

def _off_policy_batch():
    g = _gen(5)
    logp = (-3.0 * torch.rand(3, 4, generator=g, dtype=torch.float64)).requires_grad_(True)
    logp_old = logp.detach() + 0.3 * torch.randn(3, 4, generator=g, dtype=torch.float64)
    adv = torch.tensor([1.5, -0.5, -1.0], dtype=torch.float64)
    mask = torch.ones(3, 4, dtype=torch.bool)
    return PolicyBatch(logp=logp, logp_old=logp_old, advantages=adv, mask=mask, entropy=torch.zeros_like(logp))


def test_kl_cov_penalizes_exactly_the_top_fraction_by_covariance():
    batch = _off_policy_batch()
    out = KLCov(KLCov.Params(top_frac=0.25, kl_coef=2.0)).loss(batch)
    cov = _hand_cov(batch.logp, batch.advantages, batch.mask).flatten()
    top3 = set(sorted(range(12), key=lambda i: -cov[i].item())[:3])  # 25 % of 12 tokens
    assert set(out.selected.flatten().nonzero().squeeze(1).tolist()) == top3
    # loss by hand: unclipped -A r on every token, + 2 |logp - logp_old| on the three selected
    delta = (batch.logp - batch.logp_old).detach()
    r = delta.exp()
    per_token = -batch.advantages[:, None] * r + 2.0 * delta.abs() * out.selected
    assert out.loss.item() == pytest.approx(per_token.mean().item())
    out.loss.backward()
    expected_grad = (-batch.advantages[:, None] * r + 2.0 * delta.sign() * out.selected) / 12
    assert torch.allclose(batch.logp.grad, expected_grad)


def test_kl_cov_top_frac_is_a_fraction_not_a_percentage():
    batch = _off_policy_batch()
    assert KLCov(KLCov.Params(top_frac=0.5)).loss(batch).selected.sum() == 6  # half of 12, not 0.5 %
    assert KLCov.Params().top_frac == 0.002  # the 7B recipe's k_percent = 0.2 (%)


def test_kl_cov_has_no_effect_on_policy():
    batch = _off_policy_batch()
    batch.logp_old = batch.logp.detach().clone()  # first minibatch of a rollout batch
    out = KLCov(KLCov.Params(top_frac=0.5, kl_coef=10.0)).loss(batch)
    assert out.selected.sum() == 6  # tokens are selected, but their penalty is |0| with gradient 0
    out.loss.backward()
    grad = batch.logp.grad.clone()
    assert torch.allclose(grad, -batch.advantages[:, None].expand(3, 4) / 12)  # plain unclipped policy gradient
    assert out.loss.item() == pytest.approx(-batch.advantages.mean().item())


def test_kl_cov_warns_on_a_fully_on_policy_schedule():
    warning = kl_cov_needs_off_policy(ppo_epochs=1, minibatches=1)
    assert isinstance(warning, str) and "on-policy" in warning
    for epochs, minibatches in [(1, 2), (2, 1), (4, 8)]:
        assert kl_cov_needs_off_policy(epochs, minibatches) is None
    assert KLCov.schedule_warning(1, 1) == warning
    assert GRPO.schedule_warning(1, 1) is None and ClipCov.schedule_warning(1, 1) is None
    with pytest.raises(ValueError, match=">= 1"):
        kl_cov_needs_off_policy(0, 1)


def test_kl_cov_acts_on_a_random_off_policy_batch():
    batch = random_batch(seed=2, off_policy=0.3)
    plain = KLCov(KLCov.Params(top_frac=0.0)).loss(batch).loss
    penalized = KLCov(KLCov.Params(top_frac=0.2)).loss(batch).loss
    assert penalized > plain  # the penalty is non-negative and, off-policy, not zero
