"""PQ-Index-guided adaptive pruning (SAP): "Pruning Deep Neural Networks from a Sparsity
Perspective" (Diao, Wang, Zhang, Yang, Ding, Tarokh; ICLR 2023), arXiv 2302.05601, Alg. 1;
reference code diaoenmao/Pruning-Deep-Neural-Networks-from-a-Sparsity-Perspective
(src/modules/sparsity_index.py, compression.py, utils.py).

Each round measures the PQ Index I = I_{p,q}(w) of the d surviving weights (global scope) and
prunes by what it says is compressible (Alg. 1):
    r = ceil(d (1 + eta_r)^(-q / (q - p)) (1 - I)^(q p / (q - p)))  (lower bound on weights to keep)
    c = floor(d * min(gamma (1 - r / d), beta))                   (weights pruned this round)
then retrains the survivors from their initial values (the authors reset to initialization
before every round, as for lottery tickets). With p = 0.5, q = 1, eta_r = 0, gamma = 1 (the
paper's main setting, `si-0.5-1-0-1`) the round prunes the share I of what is left; beta = 0.9
caps a round. A round never passes the next target sparsity: the protocol needs the accuracy
at 50, 70 and 90%, so the round that would overshoot stops on the target (a deviation from
Alg. 1, which has no target). A round whose PQ Index asks for nothing ends the run: targets
not reached are reported as not reached.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from methods.compression.base import Pruner, check_range, pq_index
from methods.registry import register


@register("compression/sap")
class SAP(Pruner):
    @dataclass(frozen=True)
    class Params(Pruner.Params):
        p: float = 0.5  # PQ Index p (0 < p < q)
        q: float = 1.0  # PQ Index q
        eta_r: float = 0.0  # slack of the kept-weights bound, dimensionless (main setting 0)
        gamma: float = 1.0  # step size on the prunable share (main setting 1)
        beta: float = 0.9  # cap on the share pruned in one round (cfg['beta'] = 0.9)
        rewind: str = "init"  # survivors restart from their initial values (the authors' reset)

        def __post_init__(self):
            super().__post_init__()
            if not 0 < self.p < self.q:
                raise ValueError(f"SAP needs 0 < p < q, got p={self.p}, q={self.q}")
            check_range(self, "eta_r", 0.0, float("inf"))
            check_range(self, "gamma", 0.0, float("inf"))
            check_range(self, "beta", 0.0, 1.0)

    def prune_share(self, kept: torch.Tensor) -> float:
        """Share of the surviving weights this round removes: floor(d min(gamma (1 - r/d), beta)) / d."""
        p = self.params
        d = kept.numel()
        index = pq_index(kept, p.p, p.q)
        # the authors round the bound up (torch.ceil in make_bound_si)
        keep_bound = math.ceil(d * (1 + p.eta_r) ** (-p.q / (p.q - p.p)) * (1 - index) ** (p.q * p.p / (p.q - p.p)))
        # d min(gamma (1 - r/d), beta) written as min(gamma (d - r), beta d): exact in integers
        return max(0, math.floor(min(p.gamma * (d - keep_bound), p.beta * d))) / d

    def next_sparsity(self, current: float, target: float, kept: torch.Tensor) -> float:
        return min(target, current + (1.0 - current) * self.prune_share(kept))
