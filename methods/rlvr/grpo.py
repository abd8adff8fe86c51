"""GRPO: Group Relative Policy Optimization, from DeepSeekMath (Shao et al., 2024).
Paper: arXiv 2402.03300. (Eq. n) = the paper's equations.

The plain row of the RLVR table: each of a prompt's G sampled responses gets the advantage
(r - group mean) / group std, shared by all its tokens (Sec. 4.1.2), and the policy follows PPO's
clipped surrogate (Eq. 3) with no value model. The paper's KL term to the reference policy is the
separate `rlvr/kl` row, so that this row is the setting the entropy-collapse papers start from:
clip 0.2, no KL, no entropy term (the recipes of arXiv 2505.22617: use_kl_loss False, entropy_coeff 0).

Aggregation: the paper's Eq. 3 averages over each response's tokens, then over responses
("seq_mean"); the default here is "token_mean", as DAPO (arXiv 2503.14476, Sec. 3.3), the entropy
paper's recipes and the suite's smoke setting. A card switches it with `aggregation: seq_mean`.
"""
from __future__ import annotations

from dataclasses import dataclass

from methods.registry import register
from methods.rlvr.base import ClipParams, PolicyLoss


@register("rlvr/grpo")
class GRPO(PolicyLoss):
    @dataclass(frozen=True)
    class Params(ClipParams):
        eps_low: float = 0.2  # ratio clipped below at 1 - eps_low, dimensionless (Eq. 3's epsilon; 0.2 as PPO and the recipes)
        eps_high: float = 0.2  # ratio clipped above at 1 + eps_high, dimensionless (same epsilon)
        aggregation: str = "token_mean"  # "token_mean" or "seq_mean" (Eq. 3's 1/G sum 1/|o_i| sum_t)
