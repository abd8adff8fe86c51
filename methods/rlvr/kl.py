"""GRPO with a KL penalty to the reference policy, as in DeepSeekMath (Shao et al., 2024).
Paper: arXiv 2402.03300. (Eq. n) = the paper's equations.

GRPO's objective (Eq. 3) subtracts beta * KL(pi_theta || pi_ref) from the clipped surrogate,
estimated per token with the unbiased, non-negative k3 estimator (Eq. 4):
    KL_t = pi_ref/pi_theta - log(pi_ref/pi_theta) - 1 = exp(ref - logp) - (ref - logp) - 1.
The penalty is in the loss, not folded into the reward, and is aggregated like the surrogate.
The reference policy is the one RL starts from (the supervised warm-up model at smoke scale).
`kl_clamp: true` is verl's low_var_kl (log-ratio within [-20, 20], estimate within [-10, 10];
base.k3_kl), what the authors' verl recipes use with use_kl_loss; the default is the paper's
plain estimator.

beta = 0.04 is the paper's (Sec. 4.2, "The KL coefficient is 0.04"). The entropy paper's own
verl config defaults to kl_loss_coef 0.001 with the same estimator: a card entry, `beta: 0.001`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.registry import register
from methods.rlvr.base import ClipParams, PolicyBatch, PolicyLoss, aggregate, check_range, k3_kl


@register("rlvr/kl")
class KLPenalty(PolicyLoss):
    @dataclass(frozen=True)
    class Params(ClipParams):
        eps_low: float = 0.2  # ratio clipped below at 1 - eps_low, dimensionless (Eq. 3)
        eps_high: float = 0.2  # ratio clipped above at 1 + eps_high, dimensionless (Eq. 3)
        aggregation: str = "token_mean"  # "token_mean" or "seq_mean" (Eq. 3); the KL term follows it
        beta: float = 0.04  # weight of the k3 KL, loss units per nat (Eq. 3; Sec. 4.2: 0.04)
        kl_clamp: bool = False  # verl's low_var_kl clamps (base.k3_kl); False: Eq. 4 as printed

        def __post_init__(self):
            super().__post_init__()
            check_range(self, "beta", 0.0, float("inf"))

    def requires(self) -> frozenset[str]:
        return frozenset({"logp_ref"})

    def regularizer(self, batch: PolicyBatch, entropy: torch.Tensor) -> torch.Tensor:
        if batch.logp_ref is None:
            raise ValueError("rlvr/kl needs PolicyBatch.logp_ref: the log-probs of the reference policy")
        p = self.params
        return p.beta * aggregate(k3_kl(batch.logp, batch.logp_ref, clamp=p.kl_clamp), batch.mask, p.aggregation)
