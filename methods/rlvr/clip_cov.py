"""Clip-Cov, from "The Entropy Mechanism of Reinforcement Learning for Reasoning Language Models"
(Cui et al., 2025). Paper: arXiv 2505.22617, Sec. 5. Reference code: github.com/PRIME-RL/Entropy-Mechanism-of-RL
(verl/trainer/ppo/core_algos.py, compute_policy_loss_clip_cov; recipe/dapo/7b_clip_cov.sh).

Under policy gradient the entropy change of a step follows the covariance between a token's
log-probability and its advantage: confident tokens with high advantage are what drain entropy.
Clip-Cov takes those out of the update. Per response token of the batch,
    Cov_t = (logp_t - mean logp) * (A_t - mean A)            (base.token_covariance)
and among the tokens with cov_lb < Cov_t < cov_ub, a random detach_frac * N of them (N = all
response tokens of the batch, at least one) get no policy gradient this step.

As in the reference code:
- A detached token's loss is multiplied by 0, so it still counts in the token_mean denominator:
  detaching shrinks the loss rather than renormalizing it over the kept tokens.
- Tokens the PPO clip already silences are not candidates; the bounds are strict inequalities.
- The authors' recipe sets the PPO clip range to 1 on both sides (ratio in [0, 2]): Clip-Cov
  replaces the usual 0.2 clip instead of adding to it. Those are the defaults here.
Differences: the count is detach_frac * N floored with a float guard (base.fraction_count)
and detach_frac = 0 detaches nothing (the reference detaches one token even then); the random
choice draws from the generator the method is built with, not the global torch RNG.

Units: the reference's `clip_ratio` / `clip_cov_ratio` is already a fraction (2e-4 = 0.02 %), so
`detach_frac` keeps its value. The bounds are in covariance units: nats of log-probability times
advantage (GRPO advantages are in group-std units). With ~1k response tokens per step the paper's
constants select about no token (shared/notes/rlvr-smoke.md): smoke cards must say what they use.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.registry import register
from methods.rlvr.base import (
    ClipParams,
    PolicyBatch,
    PolicyLoss,
    TokenLoss,
    check_range,
    clipped_surrogate,
    fraction_count,
)


def select_in_band(
    cov: torch.Tensor, candidates: torch.Tensor, low: float, high: float, count: int, generator: torch.Generator
) -> torch.Tensor:
    """`count` tokens drawn uniformly without replacement among the candidates with low < cov < high
    (all of them if fewer): (B, T) -> (B, T) bool."""
    band = (candidates & (cov > low) & (cov < high)).flatten()
    chosen = torch.zeros_like(band)
    idx = band.nonzero().squeeze(1)  # flat positions in the band
    if count > 0 and idx.numel() > 0:
        order = torch.randperm(idx.numel(), generator=generator, device=generator.device).to(idx.device)
        chosen[idx[order[:count]]] = True
    return chosen.view_as(cov)


@register("rlvr/clip_cov")
class ClipCov(PolicyLoss):
    @dataclass(frozen=True)
    class Params(ClipParams):
        eps_low: float = 1.0  # PPO ratio clip below at 1 - eps_low, dimensionless (authors' recipe: clip_ratio_low=1)
        eps_high: float = 1.0  # PPO ratio clip above at 1 + eps_high, dimensionless (recipe: clip_ratio_high=1)
        aggregation: str = "token_mean"  # recipe loss_agg_mode token-mean
        detach_frac: float = 2e-4  # fraction (not %) of the batch's response tokens to detach (recipe clip_cov_ratio)
        cov_lb: float = 1.0  # lower covariance bound, nats x advantage, exclusive (recipe clip_cov_lb)
        cov_ub: float = 5.0  # upper covariance bound, nats x advantage, exclusive (recipe clip_cov_ub)

        def __post_init__(self):
            super().__post_init__()
            check_range(self, "detach_frac", 0.0, 1.0)
            if not self.cov_lb < self.cov_ub:
                raise ValueError(f"ClipCov.Params: cov_lb must be < cov_ub, got cov_lb={self.cov_lb}, cov_ub={self.cov_ub}")

    def __init__(self, params: "ClipCov.Params", generator: torch.Generator | None = None):
        if generator is None:
            raise ValueError("rlvr/clip_cov draws tokens at random: build it with generator=torch.Generator().manual_seed(seed)")
        super().__init__(params, generator)

    def token_loss(self, batch: PolicyBatch, cov: torch.Tensor) -> TokenLoss:
        p = self.params
        loss, clipped = clipped_surrogate(batch.logp, batch.logp_old, batch.advantages, p.eps_low, p.eps_high, p.dual_clip_c)
        count = fraction_count(p.detach_frac, int(batch.mask.sum()))
        detached = select_in_band(cov, batch.mask & ~clipped, p.cov_lb, p.cov_ub, count, self.generator)
        # Multiply by 0 rather than drop from the mask: no gradient, same denominator (reference code).
        return TokenLoss(loss * (~detached).to(loss.dtype), clipped, detached)
