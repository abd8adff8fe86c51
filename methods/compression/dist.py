"""DIST: "Knowledge Distillation from A Stronger Teacher" (Huang, You, Wang, Qian, Xu; NeurIPS
2022), arXiv 2205.10536; reference code hunto/DIST_KD -> hunto/image_classification_sota
(lib/models/losses/dist_kd.py, kd_loss.py, configs/strategies/distill/*.yaml).

With Y^s = softmax(Z^s / tau), Y^t = softmax(Z^t / tau) the (B, C) prediction matrices and
rho the Pearson correlation, d_p(u, v) = 1 - rho(u, v):
    inter = mean_i d_p(Y^s_i,:, Y^t_i,:)   (per example, across classes: the inter-class relation)
    intra = mean_j d_p(Y^s_:,j, Y^t_:,j)   (per class, across the batch: the intra-class relation)
    L = ce_weight * CE(z_s, y) + tau^2 * (beta * inter + gamma * intra)        (Eq. 10)
Both relations are dimensionless (1 - correlation, in [0, 2]).

Defaults: the authors' loss (`DIST(beta=1, gamma=1, tau=1)`) with their training weights
(`ori_loss_weight: 1`, `kd_loss_weight: 2`, in resnet_dist.yaml and dist_cifar.yaml), folded
here into beta = gamma = 2. CIFAR-100 uses tau = 4 (dist_cifar.yaml: `kd: dist_t4`); ImageNet tau 1.
Pearson's rho uses the authors' eps = 1e-8 in the cosine's denominator.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from methods.compression.base import Batch, Distiller, check_range
from methods.registry import register

EPS = 1e-8


def pearson_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """mean over rows of 1 - Pearson correlation between row i of a and row i of b: (N, M) -> ()."""
    a, b = a - a.mean(dim=1, keepdim=True), b - b.mean(dim=1, keepdim=True)
    rho = (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1) + EPS)
    return (1.0 - rho).mean()


@register("compression/dist")
class DIST(Distiller):
    @dataclass(frozen=True)
    class Params:
        ce_weight: float = 1.0  # ori_loss_weight
        beta: float = 2.0  # inter-class weight: DIST's beta 1 x kd_loss_weight 2
        gamma: float = 2.0  # intra-class weight: DIST's gamma 1 x kd_loss_weight 2
        tau: float = 1.0  # temperature (ImageNet 1; CIFAR-100 4)

        def __post_init__(self):
            for name in ("ce_weight", "beta", "gamma"):
                check_range(self, name, 0.0, float("inf"))
            check_range(self, "tau", 0.0, float("inf"), low_open=True)

    def loss(self, batch: Batch) -> torch.Tensor:
        p = self.params
        y_s, y_t = F.softmax(batch.logits / p.tau, dim=1), F.softmax(batch.teacher / p.tau, dim=1)
        inter = pearson_distance(y_s, y_t)
        intra = pearson_distance(y_s.T, y_t.T)
        return p.ce_weight * F.cross_entropy(batch.logits, batch.target) + p.tau**2 * (p.beta * inter + p.gamma * intra)
