"""PLD: "PLD: A Choice-Theoretic List-Wise Knowledge Distillation" (Bassam, Zhu, Bian; NeurIPS
2025), arXiv 2506.12542, Sec. 4 and Appendix C (the authors' PyTorch listing).

Teacher logits are Plackett-Luce worths. The teacher-optimal permutation pi* puts the true label
first, then the other classes by descending teacher logit (Sec. 4.1). PLD is the negative
Plackett-Luce log-likelihood of pi* under the student's logits s, each choice k weighted by the
teacher's softmax probability of the class chosen there (Sec. 4.2):
    L = mean_b sum_{k=1..C} q^T_{pi*_k} [ -s_{pi*_k} + log sum_{l>=k} exp(s_{pi*_l}) ],
    q^T = softmax(t / tau),  nats.
It replaces CE + KD: there is no separate CE term or mixing weight (alpha = (1, 0, ..., 0) would
give CE back). Convex and translation-invariant in s. tau = 1 is the paper's best on ImageNet
(Table 6) and the listing's default; its CIFAR-100 runs use tau = 4 (Sec. 5.1).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from methods.compression.base import Batch, Distiller, check_range
from methods.registry import register


def teacher_optimal_permutation(teacher: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, C) class indices: the label, then the rest by descending teacher logit."""
    order = torch.argsort(teacher, dim=1, descending=True, stable=True)
    rest = order[order != target[:, None]].view(teacher.size(0), -1)  # drop the label from each row
    return torch.cat([target[:, None], rest], dim=1)


@register("compression/pld")
class PLD(Distiller):
    @dataclass(frozen=True)
    class Params:
        tau: float = 1.0  # temperature of the teacher's weights q^T, dimensionless (Table 6; CIFAR 4)

        def __post_init__(self):
            check_range(self, "tau", 0.0, float("inf"), low_open=True)

    def loss(self, batch: Batch) -> torch.Tensor:
        pi = teacher_optimal_permutation(batch.teacher, batch.target)
        s = batch.logits.gather(1, pi)  # student logits in pi* order
        # log sum_{l >= k} exp(s_l): a cumulative log-sum-exp from the end of the list
        tail = torch.logcumsumexp(s.flip(1), dim=1).flip(1)
        weights = F.softmax(batch.teacher / self.params.tau, dim=1).gather(1, pi)
        return (weights * (tail - s)).sum(dim=1).mean()
