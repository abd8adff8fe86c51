"""DKD: "Decoupled Knowledge Distillation" (Zhao, Cui, Song, Qiu, Liang; CVPR 2022), arXiv
2203.08679; reference code megvii-research/mdistiller (mdistiller/distillers/DKD.py, engine/cfg.py).

With b = [p_t, 1 - p_t] the binary target / non-target split of softmax(z / T) and p^ the
softmax over the non-target classes only (Sec. 3.1):
    TCKD  = KL(b^T || b^S)                       (target-class KD, binary)
    NCKD  = KL(p^T || p^S)                       (non-target-class KD, C - 1 classes)
    KD    = TCKD + (1 - p_t^T) NCKD              (Eq. 1: the classical loss, exactly)
    L_DKD = ce_weight * CE(z_s, y) + w(epoch) * T^2 * (alpha TCKD + beta NCKD)     (Eq. 2)
where w(epoch) = min(epoch / warmup, 1) ramps the KD terms in linearly (mdistiller's
`min(epoch / WARMUP, 1)`, epochs counted from 1). DKD frees NCKD from the (1 - p_t^T) factor
that suppresses it when the teacher is confident. All KLs in nats, batch mean.

Defaults: mdistiller CFG.DKD (CE 1, alpha 1, beta 8, T 4, warm-up 20 epochs; CIFAR-100
ResNet32x4 -> ResNet8x4). Its other CIFAR pairs use beta 6 (vgg13_vgg8, wrn40_2_wrn_40_1) and
ImageNet R34 -> R18 uses T 1, beta 0.5, warm-up 1 (configs/imagenet/r34_r18/dkd.yaml).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from methods.compression.base import Batch, Distiller, check_range, kl_rows, log_soft
from methods.registry import register

# Softmax over the non-target classes: the target logit is pushed to -inf by subtracting this
# (mdistiller subtracts 1000 from z / T; a larger constant gives the same result in float32).
_MASK_OUT = 1e4


def decoupled_terms(student: torch.Tensor, teacher: torch.Tensor, target: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-example TCKD, NCKD (nats, no T^2) and the teacher's target probability p_t^T: (B,) each."""
    is_target = F.one_hot(target, student.size(1)).bool()
    log_s, log_t = log_soft(student, temperature), log_soft(teacher, temperature)
    # binary split: log p_target and log(1 - p_target), both from the log-softmax
    def binary(log_p: torch.Tensor) -> torch.Tensor:
        log_target = log_p.gather(1, target[:, None])
        log_rest = torch.logsumexp(log_p.masked_fill(is_target, float("-inf")), dim=1, keepdim=True)
        return torch.cat([log_target, log_rest], dim=1)  # (B, 2)
    tckd = kl_rows(binary(log_t), binary(log_s))
    nckd = kl_rows(log_soft(teacher - _MASK_OUT * temperature * is_target, temperature),
                   log_soft(student - _MASK_OUT * temperature * is_target, temperature))
    return tckd, nckd, log_t.gather(1, target[:, None]).squeeze(1).exp()


@register("compression/dkd")
class DKD(Distiller):
    @dataclass(frozen=True)
    class Params:
        ce_weight: float = 1.0  # weight of CE(z_s, y) (CFG.DKD.CE_WEIGHT)
        alpha: float = 1.0  # weight of TCKD (CFG.DKD.ALPHA)
        beta: float = 8.0  # weight of NCKD (CFG.DKD.BETA; 6 for VGG13->VGG8 and WRN-40-2->WRN-40-1)
        temperature: float = 4.0  # T, dimensionless (CFG.DKD.T)
        warmup: int = 20  # epochs over which the KD terms ramp from 0 to full weight (CFG.DKD.WARMUP)

        def __post_init__(self):
            for name in ("ce_weight", "alpha", "beta"):
                check_range(self, name, 0.0, float("inf"))
            check_range(self, "temperature", 0.0, float("inf"), low_open=True)
            check_range(self, "warmup", 1, 10**6)

    def loss(self, batch: Batch) -> torch.Tensor:
        p = self.params
        tckd, nckd, _ = decoupled_terms(batch.logits, batch.teacher, batch.target, p.temperature)
        ramp = min(batch.epoch / p.warmup, 1.0)
        kd = p.temperature**2 * (p.alpha * tckd + p.beta * nckd).mean()
        return p.ce_weight * F.cross_entropy(batch.logits, batch.target) + ramp * kd
