"""GRPO's loss pieces on fixed tensors against values computed by hand."""
import math

import pytest
import torch

from methods.rlvr.grpo import GRPO
from methods.rlvr.base import (
    PolicyBatch,
    aggregate,
    clipped_surrogate,
    fraction_count,
    group_advantages,
    k3_kl,
    token_covariance,
    token_entropy,
)
from rlvr_batches import hand_batch


def test_group_advantages_on_hand_made_groups():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    adv = group_advantages(rewards, group_size=4)
    # group 1: mean 1/2, sample std sqrt(1/3) -> +-0.5 / 0.57735 = +-0.866025
    # group 2: mean 1/4, sample std sqrt((3 * 1/16 + 9/16) / 3) = 1/2 -> -1/2 and 3/2
    # group 3: all equal -> 0, no gradient from this prompt
    s = math.sqrt(3) / 2
    expected = torch.tensor([s, -s, -s, s, -0.5, -0.5, -0.5, 1.5, 0.0, 0.0, 0.0, 0.0])
    assert torch.allclose(adv, expected, atol=1e-5)
    assert torch.allclose(adv.view(3, 4).sum(1), torch.zeros(3), atol=1e-6)  # centered per group


def test_group_advantages_reject_groups_that_do_not_divide_the_batch():
    with pytest.raises(ValueError, match="multiple of group_size=4"):
        group_advantages(torch.zeros(6), group_size=4)
    with pytest.raises(ValueError, match="group_size must be >= 2"):
        group_advantages(torch.zeros(6), group_size=1)


# One token per sequence, logp_old = 0 so the ratio is exp(logp):
#   r    A     -min(r A, clip(r, 0.8, 1.2) A)      clipped  d loss / d logp
#  1.5  +1     -min(1.5, 1.2)   = -1.2             yes      0
#  1.5  -1     -min(-1.5, -1.2) = +1.5             no       -A r = 1.5
#  0.5  +1     -min(0.5, 0.8)   = -0.5             no       -A r = -0.5
#  0.5  -1     -min(-0.5, -0.8) = +0.8             yes      0
#  1.1  +2     -min(2.2, 2.2)   = -2.2             no       -A r = -2.2
RATIOS = [1.5, 1.5, 0.5, 0.5, 1.1]
ADVANTAGES = [1.0, -1.0, 1.0, -1.0, 2.0]
LOSSES = [-1.2, 1.5, -0.5, 0.8, -2.2]
CLIPPED = [True, False, False, True, False]
GRADS = [0.0, 1.5, -0.5, 0.0, -2.2]


def test_clipped_surrogate_matches_hand_values_on_both_sides_of_the_clip():
    logp = torch.tensor([[math.log(r)] for r in RATIOS], dtype=torch.float64, requires_grad=True)
    loss, clipped = clipped_surrogate(logp, torch.zeros_like(logp), torch.tensor(ADVANTAGES, dtype=torch.float64), 0.2, 0.2)
    assert torch.allclose(loss.squeeze(1), torch.tensor(LOSSES, dtype=torch.float64))
    assert clipped.squeeze(1).tolist() == CLIPPED
    loss.sum().backward()
    assert torch.allclose(logp.grad.squeeze(1), torch.tensor(GRADS, dtype=torch.float64))


# Dual clip, c = 3, clip 0.2, logp_old = 0:
#   r    A     PPO loss -min(r A, clip(r) A)      dual-clip: min(PPO loss, -c A)   grad (d/dlogp)
#  5.0  -1     5.0                                min(5.0, 3.0) = 3.0              0 (capped)
#  2.5  -1     2.5                                2.5 (under the cap)              -A r = 2.5
#  5.0  +1     -1.2 (upper clip)                  A > 0: untouched, -1.2           0 (clipped)
#  0.5  -2     1.6 (lower clip)                   1.6                              0 (clipped)
DUAL_RATIOS, DUAL_ADVANTAGES = [5.0, 2.5, 5.0, 0.5], [-1.0, -1.0, 1.0, -2.0]


def test_dual_clip_caps_the_loss_of_negative_advantages_at_c_times_minus_a():
    logp = torch.tensor([[math.log(r)] for r in DUAL_RATIOS], dtype=torch.float64, requires_grad=True)
    adv = torch.tensor(DUAL_ADVANTAGES, dtype=torch.float64)
    loss, silenced = clipped_surrogate(logp, torch.zeros_like(logp), adv, 0.2, 0.2, dual_clip_c=3.0)
    assert torch.allclose(loss.squeeze(1), torch.tensor([3.0, 2.5, -1.2, 1.6], dtype=torch.float64))
    assert silenced.squeeze(1).tolist() == [True, False, True, True]
    loss.sum().backward()
    assert torch.allclose(logp.grad.squeeze(1), torch.tensor([0.0, 2.5, 0.0, 0.0], dtype=torch.float64))
    plain, _ = clipped_surrogate(logp, torch.zeros_like(logp), adv, 0.2, 0.2)
    assert plain[0].item() == pytest.approx(5.0)  # off (c = 0): the PPO loss as it was


def test_dual_clip_is_an_option_of_every_clipped_variant_and_checked():
    batch = hand_batch([[math.log(r)] for r in DUAL_RATIOS], [[0.0]] * 4, DUAL_ADVANTAGES)
    out = GRPO(GRPO.Params(dual_clip_c=3.0)).loss(batch)
    assert out.loss.item() == pytest.approx((3.0 + 2.5 - 1.2 + 1.6) / 4) and out.logs["clip_frac"] == pytest.approx(3 / 4)
    for bad in (1.0, 0.5, -2.0, math.inf):
        with pytest.raises(ValueError, match="dual_clip_c must be 0"):
            GRPO.Params(dual_clip_c=bad)


def test_k3_clamp_is_verls_low_var_kl():
    # ref - logp = 25 -> clamped to 20 first, then e^20 - 21 clamped to 10; -30 -> -20: e^-20 + 19 -> 10;
    # 1.0 -> e - 2 (inside both bounds); and the clamps stop the gradient where they bite
    logp = torch.tensor([-25.0, 0.0, -1.0], dtype=torch.float64, requires_grad=True)
    ref = torch.tensor([0.0, -30.0, 0.0], dtype=torch.float64)
    clamped = k3_kl(logp, ref, clamp=True)
    assert torch.allclose(clamped, torch.tensor([10.0, 10.0, math.e - 2], dtype=torch.float64))
    assert k3_kl(logp, ref)[0].item() == pytest.approx(math.exp(25) - 26)  # the plain estimator
    clamped.sum().backward()
    assert logp.grad[:2].tolist() == [0.0, 0.0] and logp.grad[2].item() == pytest.approx(1 - math.e)


def test_grpo_loss_is_the_token_mean_of_the_clipped_surrogate():
    batch = hand_batch([[math.log(r)] for r in RATIOS], [[0.0]] * 5, ADVANTAGES)
    out = GRPO(GRPO.Params()).loss(batch)
    assert out.loss.item() == pytest.approx(sum(LOSSES) / 5)
    assert out.logs["clip_frac"] == pytest.approx(2 / 5)
    assert out.logs["selected_frac"] == 0.0 and not out.selected.any()


def test_token_mean_and_seq_mean_weigh_short_sequences_differently():
    # sequence 0: one token with loss 4; sequence 1: three tokens with loss 1 (padding holds nan)
    per_token = torch.tensor([[4.0, math.nan, math.nan], [1.0, 1.0, 1.0]])
    mask = torch.tensor([[True, False, False], [True, True, True]])
    assert aggregate(per_token, mask, "token_mean").item() == pytest.approx((4 + 1 + 1 + 1) / 4)  # 1.75
    assert aggregate(per_token, mask, "seq_mean").item() == pytest.approx((4 + (1 + 1 + 1) / 3) / 2)  # 2.5
    with pytest.raises(ValueError, match="token_mean"):
        aggregate(per_token, mask, "token-mean")


def test_seq_mean_leaves_out_sequences_without_response_tokens():
    per_token = torch.tensor([[4.0, 0.0], [1.0, 3.0], [7.0, 7.0]])
    mask = torch.tensor([[True, False], [True, True], [False, False]])
    assert aggregate(per_token, mask, "seq_mean").item() == pytest.approx((4 + 2) / 2)


def test_grpo_aggregation_option_changes_the_loss_as_computed_by_hand():
    # ratio 1 everywhere, so each token's loss is -A: 4 on the short sequence, 1 on the long one
    logp = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    mask = [[True, False, False], [True, True, True]]
    token = GRPO(GRPO.Params(aggregation="token_mean")).loss(hand_batch(logp, logp, [-4.0, -1.0], mask))
    seq = GRPO(GRPO.Params(aggregation="seq_mean")).loss(hand_batch(logp, logp, [-4.0, -1.0], mask))
    assert token.loss.item() == pytest.approx(1.75)
    assert seq.loss.item() == pytest.approx(2.5)


def test_k3_kl_is_zero_at_the_reference_and_positive_elsewhere():
    logp = torch.tensor([-0.3, -1.2, -2.0, 0.0, math.log(0.5)], dtype=torch.float64)
    assert torch.equal(k3_kl(logp, logp.clone()), torch.zeros_like(logp))
    ref = torch.tensor([-0.5, -0.2, -4.0, math.log(0.5), 0.0], dtype=torch.float64)
    kl = k3_kl(logp, ref)
    assert (kl > 0).all()
    # logp = 0, ref = log 1/2: 1/2 - log(1/2) - 1;  logp = log 1/2, ref = 0: 2 - log 2 - 1
    assert kl[3].item() == pytest.approx(0.5 + math.log(2) - 1)
    assert kl[4].item() == pytest.approx(2 - math.log(2) - 1)


def test_token_entropy_is_log_v_for_uniform_logits_and_finite_when_saturated():
    uniform = torch.zeros(2, 3, 5)
    assert torch.allclose(token_entropy(uniform), torch.full((2, 3), math.log(5)))
    saturated = torch.tensor([[[1000.0, 0.0, 0.0]]])
    h = token_entropy(saturated)
    assert torch.isfinite(h).all() and h.item() == pytest.approx(0.0, abs=1e-6)


def test_token_covariance_is_centered_over_response_tokens_only():
    logp = torch.tensor([[-1.0, -2.0, 99.0], [-3.0, -4.0, -5.0]])
    adv = torch.tensor([1.0, -1.0])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    cov = token_covariance(logp, adv, mask)
    # 5 response tokens: mean logp = -15/5 = -3; mean A over tokens = (2 - 3)/5 = -0.2
    expected = torch.tensor([[(-1 + 3) * 1.2, (-2 + 3) * 1.2, 0.0], [0.0, (-4 + 3) * -0.8, (-5 + 3) * -0.8]])
    assert torch.allclose(cov, expected)
    assert not cov.requires_grad


def test_fraction_count_floors_without_float_error_and_keeps_at_least_one():
    assert fraction_count(0.29, 100) == 29  # 0.29 * 100 = 28.999... in floats
    assert fraction_count(2e-4, 1000) == 1  # the paper's Clip-Cov ratio at smoke scale: one token, not zero
    assert fraction_count(0.002, 1000) == 2
    assert fraction_count(0.0, 1000) == 0
    assert fraction_count(0.5, 0) == 0


def test_policy_batch_names_the_bad_field():
    logp = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="advantages must be \\(2,\\)"):
        PolicyBatch(logp=logp, logp_old=logp, advantages=torch.zeros(2, 3), mask=torch.ones(2, 3), entropy=logp)
    with pytest.raises(ValueError, match="logits or entropy"):
        PolicyBatch(logp=logp, logp_old=logp, advantages=torch.zeros(2), mask=torch.ones(2, 3))


def test_params_reject_unknown_aggregation_and_negative_clip():
    with pytest.raises(ValueError, match="aggregation must be one of"):
        GRPO.Params(aggregation="token-mean")
    with pytest.raises(ValueError, match="eps_high must be in"):
        GRPO.Params(eps_high=-0.1)
