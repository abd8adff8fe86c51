"""Iterative magnitude pruning with rewinding: "The Lottery Ticket Hypothesis" (Frankle & Carbin,
ICLR 2019, arXiv 1803.03635, Sec. 2 "iterative pruning") with late rewinding from "Stabilizing
the Lottery Ticket Hypothesis" / "Linear Mode Connectivity and the Lottery Ticket Hypothesis"
(Frankle et al. 2019/2020, arXiv 1903.01611, 1912.05671).

Each round removes `rate` of the weights still there (global magnitude), rewinds the survivors
to their values early in the dense run (the protocol's rewind epoch, not initialization: late
rewinding is what makes IMP work beyond small networks), and retrains them. Rounds go on until
each target sparsity is met; the round that would pass a target stops exactly on it, so the
sparsity after r rounds is 1 - (1 - rate)^r until then.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.compression.base import Pruner, check_range
from methods.registry import register


@register("compression/imp")
class IMP(Pruner):
    @dataclass(frozen=True)
    class Params(Pruner.Params):
        rate: float = 0.2  # share of the remaining weights pruned per round (Frankle & Carbin: 20%)
        rewind: str = "early"  # survivors restart from the dense run's rewind epoch

        def __post_init__(self):
            super().__post_init__()
            check_range(self, "rate", 0.0, 1.0, low_open=True)

    def next_sparsity(self, current: float, target: float, kept: torch.Tensor) -> float:
        return min(target, 1.0 - (1.0 - current) * (1.0 - self.params.rate))
