"""Shared pieces of the compression family: the distillation-loss contract and its divergences,
and the pruning contract with exact global magnitude masks and the PQ Index.

Distillation. A loss is a `Distiller` subclass, one module each, called by the compression
protocol once per minibatch:
    method = Cls(Cls.Params(**card_params))
    loss = method.loss(Batch(logits, target, teacher, epoch, aux))   # scalar, to minimize
    loss.backward()                                                  # the optimizer is the protocol's
`teacher` is detached for offline distillation (a trained, frozen teacher). For online
distillation (`ONLINE = True`: DML, BD-KD) the teacher is trained alongside the student and
`teacher` carries its graph: the loss returned covers both networks, each side detaching the
other's output where its paper treats it as a fixed target. `AUX_HEAD = True` asks the
protocol for a student with a second linear head on the same features (Dual-Head KD).

Units: logits are natural-log odds; every divergence is in nats per example, averaged over the
batch; "T^2" scaling follows Hinton et al. (2015) so soft-target gradients keep their size
across temperatures.

Pruning. A method is a `Pruner`: it decides the sparsity of the next pruning round (`next_sparsity`)
and what the surviving weights restart from (`rewind`). The protocol does the rest with the
functions here: masks over every weight tensor with two or more dimensions (conv kernels and
linear matrices; biases and norm parameters are kept, as in Han et al. 2015, Frankle & Carbin
2019 and Diao et al. 2023), chosen globally by magnitude so that exactly round(s * N) of the
N prunable weights are zero, and re-applied after every optimizer step so they stay zero.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F


def check_range(params, name: str, low: float, high: float, low_open: bool = False) -> None:
    """One line naming the parameter when it is out of [low, high] (or (low, high])."""
    value = getattr(params, name)
    if value < low or value > high or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be in {bracket}{low}, {high}], got {value}")


# ------------------------------------------------------------------ divergences

def log_soft(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """log softmax(z / T) over classes: (B, C) -> (B, C)."""
    return F.log_softmax(logits / temperature, dim=1)


def kl_rows(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) = sum_c p_c (log p_c - log q_c) per row, in nats: (B, C), (B, C) -> (B,).
    torch's fused kl_div (input log q, target log p) computes the same sum, about 10% faster."""
    return F.kl_div(log_q, log_p, reduction="none", log_target=True).sum(dim=1)


def forward_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton's soft-target term: T^2 * mean_b KL(p_t^T || p_s^T), nats. Mass-covering: the student
    is penalized wherever the teacher puts probability and it does not."""
    return temperature**2 * kl_rows(log_soft(teacher, temperature), log_soft(student, temperature)).mean()


def reverse_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * mean_b KL(p_s^T || p_t^T), nats. Mode-seeking: the student is penalized for mass where
    the teacher has little, so it concentrates on the teacher's modes."""
    return temperature**2 * kl_rows(log_soft(student, temperature), log_soft(teacher, temperature)).mean()


def entropy_rows(logits: torch.Tensor) -> torch.Tensor:
    """Predictive entropy H(softmax(z)) per row, nats: (B, C) -> (B,)."""
    log_p = F.log_softmax(logits, dim=1)
    return -(log_p.exp() * log_p).sum(dim=1)


# Logit-level losses (no softmax: they see the logits' offset and scale, which a softmax removes).
def logit_mse(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Mean over batch and classes of (z_s - z_t)^2, logit units squared: torch's MSELoss, as the
    logit-MSE implementations compute it (Kim et al. 2021, arXiv 2105.08919, Eq. 6 write the
    squared L2 norm, C times this). `temperature` is unused (the signature is shared)."""
    return F.mse_loss(student, teacher)


def binary_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 2.0) -> torch.Tensor:
    """Dual-Head KD's BinaryKL (arXiv 2411.08937, Sec. 3): each class a Bernoulli sigmoid(z / T);
    T^2 * mean_b sum_c KL(Bern(sigmoid(t_c/T)) || Bern(sigmoid(s_c/T))), nats."""
    log_s, log_t = F.logsigmoid(student / temperature), F.logsigmoid(teacher / temperature)
    log_s1, log_t1 = F.logsigmoid(-student / temperature), F.logsigmoid(-teacher / temperature)
    per_class = log_t.exp() * (log_t - log_s) + log_t1.exp() * (log_t1 - log_s1)
    return temperature**2 * per_class.sum(dim=1).mean()


def binary_kl_norm(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 2.0) -> torch.Tensor:
    """Dual-Head KD's BinaryKL-Norm (the authors' default logit loss): the Bernoulli of
    sigmoid((s_c - t_c) / T) pulled to 1/2, T^2 * mean_b sum_c KL(Bern(1/2) || Bern(sigmoid(.))),
    nats; zero exactly when s = t."""
    diff = (student - teacher) / temperature
    half = math.log(0.5)
    per_class = 0.5 * (half - F.logsigmoid(diff)) + 0.5 * (half - F.logsigmoid(-diff))
    return temperature**2 * per_class.sum(dim=1).mean()


LOGIT_LOSSES = {"mse": logit_mse, "binary_kl": binary_kl, "binary_kl_norm": binary_kl_norm}


def logit_loss(name: str):
    if name not in LOGIT_LOSSES:
        raise ValueError(f"logit_loss must be one of {', '.join(LOGIT_LOSSES)}, got {name!r}")
    return LOGIT_LOSSES[name]


# ------------------------------------------------------------------ the distillation contract

@dataclass
class Batch:
    logits: torch.Tensor  # (B, C) student logits (the main head)
    target: torch.Tensor  # (B,) int64 labels
    teacher: torch.Tensor  # (B, C) teacher logits: detached offline, with its graph online
    epoch: int = 1  # 1-based training epoch (DKD's warm-up)
    aux: torch.Tensor | None = None  # (B, C) student auxiliary head, when AUX_HEAD


class Distiller:
    """One distillation loss. Subclasses define `Params` (a frozen dataclass, the paper's defaults)
    and `loss(batch)`."""

    ONLINE: ClassVar[bool] = False
    AUX_HEAD: ClassVar[bool] = False

    @dataclass(frozen=True)
    class Params:
        pass

    def __init__(self, params=None):
        self.params = params if params is not None else self.Params()

    def loss(self, batch: Batch) -> torch.Tensor:
        raise NotImplementedError


@dataclass(frozen=True)
class SoftTargetParams:
    """CE on the labels plus a soft-target term at temperature T. Names follow mdistiller
    (CFG.KD.LOSS.CE_WEIGHT / KD_WEIGHT): `ce_weight` multiplies CE, `kd_weight` the T^2-scaled
    divergence. (RepDistiller calls them -r and -b; Hinton et al. write a weighted average.)"""

    temperature: float = 4.0  # T, dimensionless (mdistiller CFG.KD.TEMPERATURE, CIFAR-100)
    ce_weight: float = 0.1  # weight of CE(z_s, y) (mdistiller CFG.KD.LOSS.CE_WEIGHT)
    kd_weight: float = 0.9  # weight of the T^2-scaled KL (mdistiller CFG.KD.LOSS.KD_WEIGHT)

    def __post_init__(self):
        check_range(self, "temperature", 0.0, float("inf"), low_open=True)
        check_range(self, "ce_weight", 0.0, float("inf"))
        check_range(self, "kd_weight", 0.0, float("inf"))


@dataclass(frozen=True)
class LogitLevelParams(SoftTargetParams):
    """Soft-target KD plus a logit-level loss (one that sees the logits before any softmax)."""

    logit_loss: str = "mse"  # "mse", "binary_kl" or "binary_kl_norm" (LOGIT_LOSSES)
    logit_weight: float = 1.0  # weight of the logit-level loss
    logit_temperature: float = 2.0  # T of the BinaryKL losses (DHKD's --BinaryKL_T 2); unused by "mse"

    def __post_init__(self):
        super().__post_init__()
        logit_loss(self.logit_loss)
        check_range(self, "logit_weight", 0.0, float("inf"))
        check_range(self, "logit_temperature", 0.0, float("inf"), low_open=True)


def soft_target_loss(params: SoftTargetParams, logits: torch.Tensor, target: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """ce_weight * CE(z, y) + kd_weight * T^2 * KL(p_t^T || p_s^T): Hinton KD's objective."""
    return params.ce_weight * F.cross_entropy(logits, target) + params.kd_weight * forward_kl(logits, teacher, params.temperature)


def logit_level_loss(params: LogitLevelParams, logits: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    return params.logit_weight * logit_loss(params.logit_loss)(logits, teacher, params.logit_temperature)


# ------------------------------------------------------------------ pruning

def prunable(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Conv kernels and linear matrices: the parameters with two or more dimensions."""
    return [p for p in model.parameters() if p.dim() > 1]


def global_magnitude_masks(weights: list[torch.Tensor], sparsity: float, masks: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
    """Boolean keep-masks (True = kept) with exactly round(sparsity * N) of the N weights pruned:
    the smallest |w| over all tensors together. Weights already pruned (`masks` False) go first,
    so a mask only ever loses entries; ties are broken by position, so the count is exact."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    scores = torch.cat([w.detach().abs().flatten() for w in weights])
    if masks is not None:
        scores = torch.where(torch.cat([m.flatten() for m in masks]), scores, torch.full_like(scores, -1.0))
    n_prune = round(sparsity * scores.numel())
    keep = torch.ones_like(scores, dtype=torch.bool)
    keep[torch.argsort(scores, stable=True)[:n_prune]] = False
    return [part.view_as(w) for part, w in zip(torch.split(keep, [w.numel() for w in weights]), weights)]


@torch.no_grad()
def apply_masks(weights: list[torch.Tensor], masks: list[torch.Tensor]) -> None:
    """Zero the pruned weights in place: call after every optimizer step (momentum and weight
    decay would otherwise move them off zero)."""
    for w, m in zip(weights, masks):
        w.mul_(m)


def sparsity_of(masks: list[torch.Tensor]) -> float:
    total = sum(m.numel() for m in masks)
    return 1.0 - sum(int(m.sum()) for m in masks) / total


def pq_index(w: torch.Tensor, p: float = 0.5, q: float = 1.0) -> float:
    """PQ Index of a weight vector (Diao et al. 2023, arXiv 2302.05601, Def. 1), dimensionless in [0, 1):
        I_{p,q}(w) = 1 - d^(1/q - 1/p) ||w||_p / ||w||_q,   0 < p < q,
    i.e. 1 - (mean |w|^p)^(1/p) / (mean |w|^q)^(1/q) over the d entries. 0 for a vector of equal
    magnitudes, towards 1 for a sparse one. Defaults p = 0.5, q = 1 as in the paper's experiments."""
    if not 0 < p < q:
        raise ValueError(f"PQ Index needs 0 < p < q, got p={p}, q={q}")
    a = w.detach().abs().flatten().double()
    if a.numel() == 0 or float(a.sum()) == 0.0:
        return 0.0
    ratio = a.pow(p).mean().pow(1 / p) / a.pow(q).mean().pow(1 / q)
    return max(0.0, 1.0 - float(ratio))  # clamp float round-off below 0, as the authors' code does


class Pruner:
    """One pruning method. `next_sparsity(current, target, kept)` gives the sparsity after the next
    round (at most `target`; `kept` is the flat vector of surviving prunable weights); `ITERATIVE`
    False means every target is pruned at once from the dense model."""

    ITERATIVE: ClassVar[bool] = True
    REWINDS: ClassVar[tuple[str, ...]] = ("none", "init", "early")

    @dataclass(frozen=True)
    class Params:
        # what the surviving weights restart from after a round: "none" (keep training them),
        # "init" (their values at initialization) or "early" (at the dense run's rewind epoch)
        rewind: str = "none"

        def __post_init__(self):
            if self.rewind not in Pruner.REWINDS:
                raise ValueError(f"rewind must be one of {', '.join(Pruner.REWINDS)}, got {self.rewind!r}")

    def __init__(self, params=None):
        self.params = params if params is not None else self.Params()

    def next_sparsity(self, current: float, target: float, kept: torch.Tensor) -> float:
        raise NotImplementedError
