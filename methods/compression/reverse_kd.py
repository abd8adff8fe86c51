"""Reverse-KL KD: Hinton KD with the divergence's arguments swapped.

    L = ce_weight * CE(z_s, y) + kd_weight * T^2 * KL(softmax(z_s / T) || softmax(z_t / T))

The expectation is under the student: mode-seeking, so the student is pushed off classes the
teacher rules out rather than made to cover all of the teacher's mass (see e.g. MiniLLM, Gu et
al. 2024, arXiv 2306.08543, Sec. 2.1, for the argument in language models). Weights and T are
Hinton KD's (mdistiller's CIFAR-100 defaults), so the two rows differ only in direction.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from methods.compression.base import Batch, Distiller, SoftTargetParams, reverse_kl
from methods.registry import register


@register("compression/reverse_kd")
class ReverseKD(Distiller):
    Params = SoftTargetParams

    def loss(self, batch: Batch) -> torch.Tensor:
        p = self.params
        return p.ce_weight * F.cross_entropy(batch.logits, batch.target) + p.kd_weight * reverse_kl(batch.logits, batch.teacher, p.temperature)
