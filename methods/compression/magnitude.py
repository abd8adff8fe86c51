"""One-shot global magnitude pruning: "Learning both Weights and Connections for Efficient Neural
Networks" (Han, Pool, Tran, Dally; NeurIPS 2015), arXiv 1506.02626, Sec. 3, with the threshold
taken over all layers at once (global), as in Blalock et al. 2020 (arXiv 2003.03033) and the
one-shot baseline of Frankle & Carbin 2019.

Each target sparsity s is reached in one round from the trained dense network: the round(s * N)
smallest |w| among the N prunable weights are removed, and the survivors are fine-tuned from
their trained values (no rewinding) for the protocol's fine-tuning epochs.
"""
from __future__ import annotations

import torch

from methods.compression.base import Pruner
from methods.registry import register


@register("compression/magnitude")
class OneShotMagnitude(Pruner):
    ITERATIVE = False

    def next_sparsity(self, current: float, target: float, kept: torch.Tensor) -> float:
        return target
