"""CE-only student: the baseline every distillation loss is compared with.

    L = CE(z_s, y) = -log softmax(z_s)_y,   nats per example, batch mean.

The teacher is ignored; the protocol still trains this student with the same schedule.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from methods.compression.base import Batch, Distiller
from methods.registry import register


@register("compression/ce")
class CEOnly(Distiller):
    def loss(self, batch: Batch) -> torch.Tensor:
        return F.cross_entropy(batch.logits, batch.target)
