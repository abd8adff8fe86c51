"""SAR: Towards Stable Test-Time Adaptation in Dynamic Wild World.
Shuaicheng Niu, Jiaxiang Wu, Yifan Zhang, Zhiquan Wen, Yaofo Chen, Peilin Zhao, Mingkui Tan.
ICLR 2023. Paper: arXiv 2302.12400. Reference code: github.com/mr-eggplant/SAR.
(Eq. n) = the paper's equations.

Sharpness-aware and reliable entropy minimization, made for small batches, mixed shifts and
label shifts, where Tent collapses:
- reliable: only samples with entropy E(x) < E0 = 0.4 ln C enter the loss (Eq. 2);
- sharpness-aware: the gradient is taken at the worst nearby weights, theta + eps with
  eps = rho g / ||g|| (Eq. 4, the first-order solution of Eq. 3), and applied at theta (Eq. 5);
  the reliable filter is applied again to the entropies at theta + eps;
- model recovery: e_m, a moving average (0.9 old, 0.1 new) of the second loss, is tracked;
  when e_m < e_0 (reset_constant, 0.2 nats) the model has collapsed onto trivial confident
  predictions and is restored to its initial weights.
Two backward passes per update.

Where the reference code, not the paper text, decided:
- the second filter keeps the first filter's samples whose entropy at theta + eps is still
  below E0, and e_m is updated only when that set is non-empty;
- after a recovery e_m is kept, so recovery repeats until the average climbs back above
  e_0 (reset() between domains does clear it, as the reference's reset() does).
- the norm layers adapted are the reference's collect_params choice (skip_top_layers): not
  those of a ResNet's layer4, nor a ViT-Base's blocks 9-11 and final norm, matched by module
  name (methods/tta/base.py: TOP_LAYER_NAMES). On ResNet-50 that adapts 86 of the 106 norm
  affine tensors; the small CNN and WRN-28-10 have no such names, so all of theirs are adapted.
  Their BatchNorms still normalize with test-batch statistics, as in the reference.
Choices of this implementation:
- a batch with no reliable sample, or none left after the second filter, makes no optimizer
  step (the reference steps with zero gradients, which still moves weights by SGD momentum).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from methods.registry import register
from methods.tta.base import OptimizerParams, TTAMethod, softmax_entropy


@register("tta/sar")
class SAR(TTAMethod):
    @dataclass(frozen=True)
    class Params(OptimizerParams):  # optimizer: SGD, lr 0.00025, momentum 0.9 (paper, ResNet at batch >= 32;
        # the code uses lr 2 * 0.00025 * B / 64 below batch 32 and 0.001 * B / 64 for ViT: set lr in the card)
        e0_frac: float = 0.4  # reliable-entropy margin E0 = e0_frac * ln(C), in units of ln C (Eq. 2)
        rho: float = 0.05  # radius of the sharpness neighbourhood, L2 norm over adapted parameters (Eq. 3, 4)
        reset_constant: float = 0.2  # e_0 in nats: recover when the loss moving average falls below it
        ema_decay: float = 0.9  # weight of the past in the loss moving average e_m
        skip_top_layers: bool = True  # leave layer4 (ResNet) / blocks 9-11 (ViT) as the reference does; False: every norm layer

    def __init__(self, model: torch.nn.Module, params: "SAR.Params", n_classes: int):
        super().__init__(model, params, n_classes)
        self.trainable = self.adapt_norm_affine(params, params.skip_top_layers)
        self.e0 = params.e0_frac * math.log(n_classes)  # nats
        self.loss_ema: float | None = None  # e_m
        self.save_state()

    @torch.no_grad()
    def _perturb(self) -> list[torch.Tensor]:
        """theta <- theta + rho g / ||g|| (Eq. 4); returns the unperturbed weights."""
        grads = [p.grad for p in self.trainable if p.grad is not None]
        scale = self.params.rho / (torch.linalg.vector_norm(torch.stack([g.norm(2) for g in grads])) + 1e-12)
        saved = [p.detach().clone() for p in self.trainable]
        for p in self.trainable:
            if p.grad is not None:
                p.add_(p.grad * scale)
        return saved

    @torch.enable_grad()
    def adapt(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device)
        logits = self.model(x)  # (B, C), the predictions
        entropy = softmax_entropy(logits)
        reliable = entropy.detach() < self.e0  # Eq. 2
        n_reliable, n_used, backward_passes = int(reliable.sum()), 0, 0
        if n_reliable:
            self.optimizer.zero_grad(set_to_none=True)
            entropy[reliable].mean().backward()
            backward_passes = 1
            saved = self._perturb()
            self.optimizer.zero_grad(set_to_none=True)
            entropy2 = softmax_entropy(self.model(x))[reliable]  # at theta + eps, same batch statistics as above
            reliable2 = entropy2.detach() < self.e0
            n_used = int(reliable2.sum())
            if n_used:
                loss2 = entropy2[reliable2].mean()
                loss2.backward()  # the sharpness-aware gradient (Eq. 5)
                backward_passes = 2
                d = self.params.ema_decay
                self.loss_ema = loss2.item() if self.loss_ema is None else d * self.loss_ema + (1 - d) * loss2.item()
            with torch.no_grad():
                for p, p0 in zip(self.trainable, saved):
                    p.copy_(p0)
            if n_used:
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)

        recovered = self.loss_ema is not None and self.loss_ema < self.params.reset_constant
        if recovered:
            self.restore_state()  # keeps loss_ema, as the reference does
        self.record(logits, used=n_used, backward_passes=backward_passes, reset=int(recovered), reliable_frac=n_reliable / len(x))
        return logits.detach()

    def reset(self) -> None:
        super().reset()
        self.loss_ema = None
