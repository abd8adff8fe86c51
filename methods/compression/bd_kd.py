"""BD-KD: "BD-KD: Balancing the Divergences for Online Knowledge Distillation" (Amara,
Sepahvand, Meyer, Gross, Clark), arXiv 2212.12965.

Online distillation like DML (a larger teacher and the student trained together), made
"student-centred" for calibration: each example's student loss mixes forward KL (mass-covering,
softens) and reverse KL (mode-seeking, sharpens), weighted by which of the two networks is the
more confident on that example, and the teacher is regularized towards the student with a
reverse KL. As implemented here (p = softmax(z / T), H = entropy, nats, batch mean):
    w_b = boost if H(p_s,b) > H(p_t,b) else 1    (student less confident: sharpen it)
    L_student = CE(z_s, y) + T^2 mean_b [ (boost + 1 - w_b) KL(p_t || p_s)_b + w_b KL(p_s || p_t)_b ]
    L_teacher = CE(z_t, y) + teacher_weight * T^2 mean_b KL(p_t || p_s)_b
The student's target side (p_t) is detached in its loss and the teacher's (p_s) in the teacher's.

Provenance, stated plainly: the paper's method section and code could not be read offline for
this implementation; its abstract and summaries give the structure above (sample-wise weighting
of forward and reverse KL by the teacher-student entropy gap for the student, reverse KL as the
teacher's regularizer). The direction of the switch, `boost` = 2 and T = 1 are this
implementation's reading, to be checked against the paper's Eq. for the student loss.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from methods.compression.base import (
    Batch,
    Distiller,
    check_range,
    entropy_rows,
    kl_rows,
    log_soft,
)
from methods.registry import register


@register("compression/bd_kd")
class BDKD(Distiller):
    ONLINE = True

    @dataclass(frozen=True)
    class Params:
        boost: float = 2.0  # weight of the favoured divergence on an example (the other gets 1)
        teacher_weight: float = 1.0  # weight of the teacher's reverse-KL regularizer
        temperature: float = 1.0  # T of both softmaxes, dimensionless

        def __post_init__(self):
            check_range(self, "boost", 0.0, float("inf"))
            check_range(self, "teacher_weight", 0.0, float("inf"))
            check_range(self, "temperature", 0.0, float("inf"), low_open=True)

    def loss(self, batch: Batch) -> torch.Tensor:
        p, T = self.params, self.params.temperature
        log_s, log_t = log_soft(batch.logits, T), log_soft(batch.teacher, T)
        with torch.no_grad():  # which side to favour is a choice, not a path for gradients
            reverse_w = torch.where(entropy_rows(batch.logits) > entropy_rows(batch.teacher), p.boost, 1.0)
        forward_w = p.boost + 1.0 - reverse_w
        fixed_t = log_t.detach()
        mixed = forward_w * kl_rows(fixed_t, log_s) + reverse_w * kl_rows(log_s, fixed_t)
        student = F.cross_entropy(batch.logits, batch.target) + T**2 * mixed.mean()
        teacher = F.cross_entropy(batch.teacher, batch.target) + p.teacher_weight * T**2 * kl_rows(log_t, log_s.detach()).mean()
        return student + teacher
