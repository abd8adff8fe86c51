"""Hinton KD: "Distilling the Knowledge in a Neural Network" (Hinton, Vinyals, Dean, 2015),
arXiv 1503.02531, Sec. 2. Defaults: mdistiller (megvii-research/mdistiller, engine/cfg.py, CIFAR-100).

    L = ce_weight * CE(z_s, y) + kd_weight * T^2 * KL(softmax(z_t / T) || softmax(z_s / T))

Forward KL: the teacher's distribution is the target, the divergence is taken under it (the
student must cover every class the teacher gives mass to). T^2 keeps the soft term's gradients
the same size as the hard term's when T changes (Hinton et al., end of Sec. 2).

Which weight multiplies CE: `ce_weight` (mdistiller CE_WEIGHT = 0.1); `kd_weight` (KD_WEIGHT =
0.9) multiplies the T^2-scaled KL. RepDistiller writes the same split as -r 0.1 -b 0.9, and
torchdistill's KDLoss as alpha (on CE) and 1 - alpha; T = 4 on CIFAR-100 in all three.
"""
from __future__ import annotations

import torch

from methods.compression.base import (
    Batch,
    Distiller,
    SoftTargetParams,
    soft_target_loss,
)
from methods.registry import register


@register("compression/kd")
class HintonKD(Distiller):
    Params = SoftTargetParams

    def loss(self, batch: Batch) -> torch.Tensor:
        return soft_target_loss(self.params, batch.logits, batch.target, batch.teacher)
