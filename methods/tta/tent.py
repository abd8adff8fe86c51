"""Tent: Fully Test-Time Adaptation by Entropy Minimization.
Dequan Wang, Evan Shelhamer, Shaoteng Liu, Bruno Olshausen, Trevor Darrell. ICLR 2021.
Paper: arXiv 2006.10726. Reference code: github.com/DequanWang/tent. (Eq. n) = the paper's equations.

On every test batch: normalize with the batch's own statistics, predict, and take one optimizer
step on the mean prediction entropy H(y) = -sum_c p(y_c) log p(y_c) (Eq. 1), updating only the
channel-wise affine scale and shift of the normalization layers. The returned predictions are
those of the forward pass used for the update (the update helps the next batch), as in the
reference code.

The paper adapts BatchNorm; following SAR and DeYO, GroupNorm and LayerNorm affine parameters
are adapted as well when the model normalizes with those.

Defaults: the paper's CIFAR/digits setting, Adam lr 1e-3 (beta 0.9), which matches the image
sizes this suite runs at smoke scale. Its ImageNet setting, SGD lr 0.00025 momentum 0.9 at
batch 64 (used as the Tent baseline by EATA, SAR and DeYO), is a card entry:
`params: {optimizer: sgd, lr: 0.00025}`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.registry import register
from methods.tta.base import OptimizerParams, TTAMethod, softmax_entropy


@register("tta/tent")
class Tent(TTAMethod):
    @dataclass(frozen=True)
    class Params(OptimizerParams):
        optimizer: str = "adam"  # "adam" (paper, CIFAR/digits) or "sgd" (paper, ImageNet)
        lr: float = 1e-3  # learning rate per batch (paper: 1e-3 Adam; 0.00025 SGD at batch 64)
        momentum: float = 0.9  # Adam beta1 (paper 0.9) or SGD momentum (paper 0.9)

    def __init__(self, model: torch.nn.Module, params: "Tent.Params", n_classes: int):
        super().__init__(model, params, n_classes)
        self.adapt_norm_affine(params)
        self.save_state()

    @torch.enable_grad()  # the engine may stream under no_grad; the update needs a graph
    def adapt(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x.to(self.device))  # (B, C)
        loss = softmax_entropy(logits).mean()  # Eq. 1, averaged over the batch
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.record(logits, used=len(logits), backward_passes=1, loss=loss.item())
        return logits.detach()
