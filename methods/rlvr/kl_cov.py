"""KL-Cov, from "The Entropy Mechanism of Reinforcement Learning for Reasoning Language Models"
(Cui et al., 2025). Paper: arXiv 2505.22617, Sec. 5. Reference code: github.com/PRIME-RL/Entropy-Mechanism-of-RL
(verl/trainer/ppo/core_algos.py, compute_policy_loss_kl_cov; recipe/dapo/7b_kl_cov.sh, 32b_kl_cov.sh).

Where Clip-Cov removes high-covariance tokens from the update, KL-Cov holds them near the policy
that sampled them. The top_frac * N response tokens of the batch with the largest
    Cov_t = (logp_t - mean logp) * (A_t - mean A)            (base.token_covariance)
get a penalty kl_coef * |logp_t - logp_old_t| added to their per-token loss; every token's
policy term is the unclipped -r_t A_t. As in the reference code:
- no PPO ratio clip at all (the penalty is the trust region, on the tokens that matter);
- the penalty is the absolute log-ratio to the *sampling* policy, not a KL to the reference model;
- top-k over all response tokens of the minibatch, at least one token.

On-policy it does nothing: on the first minibatch of a rollout batch logp == logp_old, so the
penalty and its gradient are 0 (d|x|/dx = 0 at 0 in torch), and KL-Cov is plain unclipped policy
gradient. It acts only on later minibatches or PPO epochs. `kl_cov_needs_off_policy` says so for a
schedule of 1 epoch x 1 minibatch (measured at smoke scale: shared/notes/rlvr-smoke.md). One
version of the authors' 7B recipe uses a single minibatch per rollout batch (train_prompt_mini_bsz
= train_prompt_bsz = 256): there logp and logp_old differ only by the numerical noise of two
forward passes, and the penalty's gradient, kl_coef * sign(noise), is noise, not a trust region.
Their 32B recipe uses 8 minibatches (32 of 256 prompts).

Units: the reference's `k_percent` is a percentage (k_percent=0.2 means 0.2 % = 0.002; the code
divides by 100), later verl's `kl_cov_ratio` a fraction. Here `top_frac` is a fraction: the 7B
recipe's k_percent=0.2 is top_frac=0.002, the 32B recipe's k_percent=0.02 is top_frac=0.0002.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.registry import register
from methods.rlvr.base import (
    LossParams,
    PolicyBatch,
    PolicyLoss,
    TokenLoss,
    check_range,
    fraction_count,
    policy_ratio,
)


def kl_cov_needs_off_policy(ppo_epochs: int, minibatches: int) -> str | None:
    """A warning when the schedule is fully on-policy (1 PPO epoch x 1 minibatch per rollout
    batch), where KL-Cov's penalty is identically 0; None otherwise."""
    if ppo_epochs < 1 or minibatches < 1:
        raise ValueError(f"ppo_epochs and minibatches must be >= 1, got {ppo_epochs} and {minibatches}")
    if ppo_epochs == 1 and minibatches == 1:
        return ("rlvr/kl_cov with 1 PPO epoch x 1 minibatch is fully on-policy: logp == logp_old at every update, "
                "so the |logp - logp_old| penalty and its gradient are 0 and KL-Cov is plain unclipped policy "
                "gradient. Use 2 or more minibatches (or epochs) per rollout batch; the paper's 32B recipe uses 8.")
    return None


def select_top(cov: torch.Tensor, mask: torch.Tensor, count: int) -> torch.Tensor:
    """The `count` response tokens with the largest cov: (B, T) -> (B, T) bool."""
    chosen = torch.zeros(cov.numel(), dtype=torch.bool, device=cov.device)
    if count > 0:
        ranked = torch.where(mask, cov, torch.full_like(cov, -torch.inf)).flatten()
        chosen[torch.topk(ranked, count).indices] = True
    return chosen.view_as(cov)


@register("rlvr/kl_cov")
class KLCov(PolicyLoss):
    @dataclass(frozen=True)
    class Params(LossParams):
        aggregation: str = "token_mean"  # recipe loss_agg_mode token-mean
        top_frac: float = 2e-3  # fraction (not %) of the batch's response tokens penalized (7B recipe k_percent=0.2 %)
        kl_coef: float = 1.0  # weight of |logp - logp_old|, loss units per nat (recipes: ppo_kl_coef=1)

        def __post_init__(self):
            super().__post_init__()
            check_range(self, "top_frac", 0.0, 1.0)
            check_range(self, "kl_coef", 0.0, float("inf"))

    @classmethod
    def schedule_warning(cls, ppo_epochs: int, minibatches: int) -> str | None:
        return kl_cov_needs_off_policy(ppo_epochs, minibatches)

    def token_loss(self, batch: PolicyBatch, cov: torch.Tensor) -> TokenLoss:
        p = self.params
        surrogate = -policy_ratio(batch.logp, batch.logp_old) * batch.advantages[:, None]  # no clip (reference)
        penalized = select_top(cov, batch.mask, fraction_count(p.top_frac, int(batch.mask.sum())))
        penalty = p.kl_coef * (batch.logp - batch.logp_old).abs()
        loss = torch.where(penalized, surrogate + penalty, surrogate)
        return TokenLoss(loss, torch.zeros_like(penalized), penalized)
