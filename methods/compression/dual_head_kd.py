"""Dual-Head KD (DHKD): "Dual-Head Knowledge Distillation: Enhancing Logits Utilization with an
Auxiliary Head" (Yang, Zong, Huang, Feng, An), arXiv 2411.08937; reference code
github.com/penghui-yang/DHKD (train_student.py, helper/loops.py, distiller_zoo/BinaryKLNorm.py).

The student's linear classifier is split in two heads on the same backbone features: the main
head takes the probability-level losses, the auxiliary head only the logit-level loss, so the
two never meet in one classifier (Sec. 4); only the main head predicts at test time.

    L = ce_weight * CE(z_main, y) + kd_weight * T^2 * KL(p_t^T || p_main^T)
        + logit_weight * l(z_aux, z_t)

Defaults are the authors' CIFAR-100 quick start (`--distill dhkd -r 1 -a 1 --BinaryKL_T 2`):
CE weight 1 on the main head, no KL term (their loop computes `gamma * CE(main) + alpha *
BinaryKLNorm(aux)`), l = BinaryKL-Norm at T = 2 with weight 1, a linear auxiliary head (their
default; the quick start adds `--nonlinear --ga`). Not implemented: the optional nonlinear
auxiliary head and the gradient-alignment optimizer (`--ga`, PCGrad-style), both off by default
in their code. A card row with `kd_weight: 0.9, ce_weight: 0.1, logit_loss: mse` is
`kd_logit_mse` with the logit term moved to the auxiliary head: the paper's remedy, isolated.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.compression.base import (
    Batch,
    Distiller,
    LogitLevelParams,
    logit_level_loss,
    soft_target_loss,
)
from methods.registry import register


@register("compression/dual_head_kd")
class DualHeadKD(Distiller):
    AUX_HEAD = True

    @dataclass(frozen=True)
    class Params(LogitLevelParams):
        temperature: float = 4.0  # T of the (optional) KL term on the main head
        ce_weight: float = 1.0  # CE on the main head (DHKD -r 1)
        kd_weight: float = 0.0  # KL on the main head: off in the authors' dhkd loop
        logit_loss: str = "binary_kl_norm"  # on the auxiliary head (DHKD's BinaryKLNorm)
        logit_weight: float = 1.0  # DHKD -a 1
        logit_temperature: float = 2.0  # DHKD --BinaryKL_T 2

    def loss(self, batch: Batch) -> torch.Tensor:
        if batch.aux is None:
            raise ValueError("compression/dual_head_kd needs Batch.aux: the student's auxiliary-head logits")
        p = self.params
        return soft_target_loss(p, batch.logits, batch.target, batch.teacher) + logit_level_loss(p, batch.aux, batch.teacher)
