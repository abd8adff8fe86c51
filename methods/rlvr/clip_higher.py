"""Clip-higher, from DAPO: An Open-Source LLM Reinforcement Learning System at Scale (Yu et al., 2025).
Paper: arXiv 2503.14476, Sec. 3.1. Reference code: github.com/volcengine/verl (recipe/dapo).

PPO's upper clip 1 + eps caps how fast an unlikely token's probability can grow (a token at
p = 0.01 can only reach 0.012 per update at eps = 0.2), while a likely token is barely limited:
exploration tokens lose, and entropy collapses. DAPO decouples the two bounds and raises only
the upper one, eps_high = 0.28, keeping eps_low = 0.2 so that probabilities are not pushed to 0.

Only the clip bounds differ from `rlvr/grpo`.
"""
from __future__ import annotations

from dataclasses import dataclass

from methods.registry import register
from methods.rlvr.base import ClipParams, PolicyLoss


@register("rlvr/clip_higher")
class ClipHigher(PolicyLoss):
    @dataclass(frozen=True)
    class Params(ClipParams):
        eps_low: float = 0.2  # ratio clipped below at 1 - eps_low, dimensionless (Sec. 3.1: 0.2)
        eps_high: float = 0.28  # ratio clipped above at 1 + eps_high, dimensionless (Sec. 3.1: 0.28)
        aggregation: str = "token_mean"  # DAPO's token-level loss (Sec. 3.3)
