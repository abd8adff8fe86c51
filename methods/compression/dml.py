"""DML: "Deep Mutual Learning" (Zhang, Xiang, Hospedales, Lu; CVPR 2018), arXiv 1706.00384, Eq. 1-4.

Online distillation: no trained teacher. The two networks of the pair (here the pair's teacher
architecture, trained from scratch, and the student) learn together, each from the labels and
from the other's current prediction, which it treats as a fixed target:
    L_student = CE(z_s, y) + kl_weight * KL(p_t || p_s)
    L_teacher = CE(z_t, y) + kl_weight * KL(p_s || p_t)
with p = softmax(z) (no temperature in the paper), KLs in nats, batch mean. The loss returned
is their sum; each KL's target side is detached, so each network gets exactly its own gradient.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from methods.compression.base import Batch, Distiller, check_range, kl_rows, log_soft
from methods.registry import register


@register("compression/dml")
class DML(Distiller):
    ONLINE = True

    @dataclass(frozen=True)
    class Params:
        kl_weight: float = 1.0  # weight of each peer's KL to the other (Eq. 1-2: 1)
        temperature: float = 1.0  # T of both softmaxes (the paper has none: 1)

        def __post_init__(self):
            check_range(self, "kl_weight", 0.0, float("inf"))
            check_range(self, "temperature", 0.0, float("inf"), low_open=True)

    def loss(self, batch: Batch) -> torch.Tensor:
        p, T = self.params, self.params.temperature
        log_s, log_t = log_soft(batch.logits, T), log_soft(batch.teacher, T)
        student = F.cross_entropy(batch.logits, batch.target) + p.kl_weight * T**2 * kl_rows(log_t.detach(), log_s).mean()
        teacher = F.cross_entropy(batch.teacher, batch.target) + p.kl_weight * T**2 * kl_rows(log_s.detach(), log_t).mean()
        return student + teacher
