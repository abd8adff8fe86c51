"""GRPO with an entropy bonus: the classic entropy regularizer (Williams & Peng, 1991; verl's
"entropy loss"), one of the regularization baselines of "The Entropy Mechanism of Reinforcement
Learning for Reasoning Language Models" (Cui et al., 2025), arXiv 2505.22617, which reports it
to be sensitive to its coefficient.

loss = clipped surrogate - coef * H, with H the token entropy of pi_theta over the response
tokens (nats), aggregated like the surrogate. The gradient flows through the full distribution
(the logits), not only through the sampled token, so it raises every position's entropy.

coef = 0.001 is verl's historical default `actor.entropy_coeff` (the entropy paper's own recipes
set 0 and sweep it as the baseline intervention); the suite's smoke runs tried 0.01 and 0.05
(shared/notes/rlvr-smoke.md), card entries.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.registry import register
from methods.rlvr.base import ClipParams, PolicyBatch, PolicyLoss, aggregate, check_range


@register("rlvr/entropy_bonus")
class EntropyBonus(PolicyLoss):
    @dataclass(frozen=True)
    class Params(ClipParams):
        eps_low: float = 0.2  # ratio clipped below at 1 - eps_low, dimensionless (GRPO)
        eps_high: float = 0.2  # ratio clipped above at 1 + eps_high, dimensionless (GRPO)
        aggregation: str = "token_mean"  # "token_mean" or "seq_mean"; the entropy term follows it
        coef: float = 0.001  # weight of the entropy bonus, loss units per nat (verl entropy_coeff)

        def __post_init__(self):
            super().__post_init__()
            check_range(self, "coef", 0.0, float("inf"))

    def requires(self) -> frozenset[str]:
        return frozenset({"logits"})  # the entropy's gradient runs through every logit

    def regularizer(self, batch: PolicyBatch, entropy: torch.Tensor) -> torch.Tensor:
        if not entropy.requires_grad and batch.logp.requires_grad:
            raise ValueError("rlvr/entropy_bonus needs an entropy that carries the gradient: pass PolicyBatch.logits "
                             "(or an entropy computed from them without detaching)")
        return -self.params.coef * aggregate(entropy, batch.mask, self.params.aggregation)
