"""KD + logit MSE on one head: the naive combination of a probability-level and a logit-level
loss that "Dual-Head Knowledge Distillation" (Yang et al. 2024/2025, arXiv 2411.08937, Fig. 1,
Sec. 3) reports as harmful: both losses act on the same linear classifier, whose gradients
from the two conflict, and accuracy falls below either loss alone.

    L = ce_weight * CE(z_s, y) + kd_weight * T^2 * KL(p_t^T || p_s^T) + logit_weight * ||z_s - z_t||^2

KD's part is Hinton KD with mdistiller's CIFAR-100 defaults (T 4, CE 0.1, KL 0.9). The logit
term is the logit MSE of Kim et al. 2021 (arXiv 2105.08919, Eq. 6), computed as torch's MSELoss
(mean over batch and classes; logit units squared), weight 1. Summed over classes instead (C
times larger), the smoke student diverged to NaN at lr 0.05 within its first epoch. The DHKD paper's
own logit-level loss is BinaryKL: `logit_loss: binary_kl` on a card row gives that variant.
"""
from __future__ import annotations

import torch

from methods.compression.base import (
    Batch,
    Distiller,
    LogitLevelParams,
    logit_level_loss,
    soft_target_loss,
)
from methods.registry import register


@register("compression/kd_logit_mse")
class KDLogitMSE(Distiller):
    Params = LogitLevelParams

    def loss(self, batch: Batch) -> torch.Tensor:
        p = self.params
        return soft_target_loss(p, batch.logits, batch.target, batch.teacher) + logit_level_loss(p, batch.logits, batch.teacher)
