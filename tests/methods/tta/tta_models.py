"""Tiny models and images for the TTA method tests: small enough that the directory runs in seconds.

A helper module imported by name, not a conftest.py (test modules are imported without packages).
The one-thread fixture for every test is in tests/conftest.py."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _norm(kind: str, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if kind == "bn" else nn.GroupNorm(4, channels)


def build_cnn(norm: str = "bn", in_ch: int = 1, size: int = 28, n_classes: int = 10, head: str = "flatten", logit_scale: float = 20.0, seed: int = 0) -> nn.Module:
    """conv-N-ReLU-pool, conv-N-ReLU, then global average pool ("pool") or a 4x4 pool flattened
    ("flatten": position-sensitive, so DeYO's shuffled patches change the prediction), then
    linear. logit_scale makes the random model confident, so entropy filters let samples through."""
    torch.manual_seed(seed)
    features = [nn.Conv2d(in_ch, 8, 3, padding=1), _norm(norm, 8), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(8, 8, 3, padding=1), _norm(norm, 8), nn.ReLU()]
    if head == "pool":
        tail = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, n_classes)]
    else:
        tail = [nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(8 * 16, n_classes)]
    model = nn.Sequential(*features, *tail)
    with torch.no_grad():
        model[-1].weight.mul_(logit_scale)
        if norm == "bn":  # source running statistics that differ from any single test batch
            model.train()
            for _ in range(3):
                model(torch.rand(16, in_ch, size, size))
    return model.eval()


def build_passthrough(n_classes: int = 10, scale: float = 4.0) -> nn.Module:
    """logits = LayerNorm(x) * scale: inputs (B, C, 1, 1) choose the logits almost directly."""
    model = nn.Sequential(nn.Flatten(), nn.LayerNorm(n_classes))
    with torch.no_grad():
        model[1].weight.fill_(scale)
    return model.eval()


def build_images(n: int, in_ch: int = 1, size: int = 28) -> torch.Tensor:
    """Smooth random blobs in [0, 1]: unlike i.i.d. pixel noise, each image gets its own prediction."""
    return F.interpolate(torch.rand(n, in_ch, 4, 4), size=(size, size), mode="bilinear", align_corners=False)

