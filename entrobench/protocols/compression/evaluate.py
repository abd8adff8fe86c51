"""What a compression cell measures on held-out images: accuracy, calibration, entropy, distance
to the teacher, and the wall time of inference. Pure functions of logits and labels, plus
`predict` and `time_inference` for a model."""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from methods.compression.base import entropy_rows, kl_rows

ECE_BINS = 15  # equal-width confidence bins (Guo et al. 2017, arXiv 1706.04599)


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Logits of the main head, eval mode: (N, ...) -> (N, C)."""
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(x), batch_size):
        z = model(x[i : i + batch_size])
        out.append(z[0] if isinstance(z, tuple) else z)
    model.train(was_training)
    return torch.cat(out)


def reliability(logits: torch.Tensor, y: torch.Tensor, bins: int = ECE_BINS) -> dict[str, list[float]]:
    """Per confidence bin ((k-1)/bins, k/bins]: mean confidence, accuracy and count (empty bins: 0)."""
    conf, pred = F.softmax(logits, dim=1).max(dim=1)
    index = torch.clamp((conf * bins).ceil().long() - 1, 0, bins - 1)
    count = torch.bincount(index, minlength=bins).double()
    conf_sum = torch.bincount(index, weights=conf.double(), minlength=bins)
    hit_sum = torch.bincount(index, weights=(pred == y).double(), minlength=bins)
    safe = count.clamp(min=1)
    return {"confidence": (conf_sum / safe).tolist(), "accuracy": (hit_sum / safe).tolist(), "count": count.tolist()}


def ece_pct(logits: torch.Tensor, y: torch.Tensor, bins: int = ECE_BINS) -> float:
    """Expected calibration error, %: sum_b (n_b / N) |acc_b - conf_b| over equal-width bins."""
    r = reliability(logits, y, bins)
    n = sum(r["count"])
    return 100.0 * sum(c / n * abs(a - f) for a, f, c in zip(r["accuracy"], r["confidence"], r["count"]))


def classification_metrics(logits: torch.Tensor, y: torch.Tensor, teacher: torch.Tensor | None = None) -> dict[str, float]:
    out = {
        "top1_pct": 100.0 * float((logits.argmax(dim=1) == y).double().mean()),
        "ece_pct": ece_pct(logits, y),
        "nll": float(F.cross_entropy(logits.double(), y)),
        "entropy": float(entropy_rows(logits.double()).mean()),
    }
    if teacher is not None:  # KL(p_teacher || p_student) at T = 1, the divergence KD minimizes
        out["teacher_kl"] = float(kl_rows(F.log_softmax(teacher.double(), 1), F.log_softmax(logits.double(), 1)).mean())
    return out


def time_inference(model: torch.nn.Module, x: torch.Tensor, batch_size: int, repeats: int = 3) -> float:
    """Median wall time of a forward pass over `x`, ms per 1000 images (eval mode, no grad, one warm-up)."""
    predict(model, x[:batch_size], batch_size)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict(model, x, batch_size)
        times.append(time.perf_counter() - start)
    return 1000.0 * sorted(times)[len(times) // 2] * 1000.0 / len(x)
