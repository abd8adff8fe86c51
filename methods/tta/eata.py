"""EATA: Efficient Test-Time Model Adaptation without Forgetting.
Shuaicheng Niu, Jiaxiang Wu, Yifan Zhang, Yaofo Chen, Shijian Zheng, Peilin Zhao, Mingkui Tan.
ICML 2022. Paper: arXiv 2204.02610. Reference code: github.com/mr-eggplant/EATA.
(Eq. n) = the paper's equations.

Tent's update restricted to samples worth a backward pass, plus an anti-forgetting penalty:
- reliable: entropy E(x) below E0 = 0.4 ln C, each weighted by 1/exp(E(x) - E0) (Eq. 3);
- non-redundant: cosine similarity between the sample's softmax and a moving average m of
  past selected softmaxes below d_margin (Eq. 5), m <- (1 - a) m + a mean(selected) (Eq. 4);
- loss = mean over selected of weight * E (Eq. 6) + beta * sum_i F_i (theta_i - theta_i^0)^2
  (Eq. 7, 8), with F the diagonal Fisher information of the norm affine parameters on
  in-distribution images labelled by the model's own predictions (Eq. 9), computed in prepare().
ETA, the paper's variant without the regularizer, is this class with fisher_alpha = 0.

Where the reference code, not the paper text, decided:
- the moving average starts as the mean of the first batch's reliable softmaxes and is updated
  only with samples that pass both filters;
- the Fisher information is the squared gradient of the batch-mean cross-entropy, averaged over
  batches of fisher_batch_size images (the paper writes it per sample); fisher_alpha = 2000 was
  tuned for that scale.
Choices of this implementation:
- backward only through the selected samples when the model has no BatchNorm: samples are then
  independent, so re-running the forward on the selected ones gives the paper's loss exactly at
  a fraction of the backward cost. With BatchNorm the selected samples' outputs depend on the
  whole batch's statistics, so the loss is masked on the full-batch graph (the reference's
  implementation) rather than changing the normalization;
- reset() also forgets the probability average (the reference keeps it across domains), so a
  reset-per-domain run does not depend on the order of the domains;
- adapt() refuses to run with fisher_alpha > 0 before prepare(), instead of silently being ETA.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from methods.registry import register
from methods.tta.base import OptimizerParams, TTAMethod, has_batch_norm, softmax_entropy


@register("tta/eata")
class EATA(TTAMethod):
    @dataclass(frozen=True)
    class Params(OptimizerParams):  # optimizer: SGD, lr 0.00025, momentum 0.9 (paper, ImageNet, batch 64)
        e0_frac: float = 0.4  # entropy margin E0 = e0_frac * ln(C), in units of ln C (Eq. 3)
        d_margin: float = 0.05  # cosine-similarity threshold epsilon for redundancy, unitless (Eq. 5)
        ma_alpha: float = 0.1  # weight of the current batch in the moving average of softmaxes (Eq. 4)
        fisher_alpha: float = 2000.0  # beta, weight of the Fisher regularizer (Eq. 8); 0 gives ETA
        fisher_batch_size: int = 64  # images per gradient when estimating the Fisher information (Eq. 9)

    def __init__(self, model: torch.nn.Module, params: "EATA.Params", n_classes: int):
        super().__init__(model, params, n_classes)
        self.trainable = self.adapt_norm_affine(params)
        self.e0 = params.e0_frac * math.log(n_classes)  # nats
        self.batch_coupled = has_batch_norm(model)
        self.prob_avg: torch.Tensor | None = None  # m, (C,)
        self.fisher: list[torch.Tensor] | None = None  # F_i, one tensor per trainable parameter
        self.anchor: list[torch.Tensor] | None = None  # theta^0, the weights the Fisher was taken at
        self.save_state()

    @torch.enable_grad()
    def prepare(self, clean_x: torch.Tensor) -> None:
        """Diagonal Fisher information on in-distribution images, pseudo-labelled (Eq. 9)."""
        if self.params.fisher_alpha == 0:
            return  # ETA: the regularizer is zero whatever F is
        chunks = clean_x.to(self.device).split(self.params.fisher_batch_size)
        fisher = [torch.zeros_like(p) for p in self.trainable]
        for xb in chunks:
            logits = self.model(xb)
            loss = F.cross_entropy(logits, logits.argmax(1))
            grads = torch.autograd.grad(loss, self.trainable, allow_unused=True)
            for f, g in zip(fisher, grads):
                if g is not None:
                    f += g.detach() ** 2
        self.fisher = [f / len(chunks) for f in fisher]
        self.anchor = [p.detach().clone() for p in self.trainable]

    def select(self, entropy: torch.Tensor, probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,), (B, C) -> masks (B,): reliable (Eq. 3), and reliable and non-redundant (Eq. 5)."""
        reliable = entropy < self.e0
        if self.prob_avg is None:
            return reliable, reliable
        cosine = F.cosine_similarity(probs, self.prob_avg[None], dim=1)
        return reliable, reliable & (cosine.abs() < self.params.d_margin)

    def sample_weight(self, entropy: torch.Tensor) -> torch.Tensor:
        """1 / exp(E(x) - E0) (Eq. 3): the more confident, the larger the weight."""
        return torch.exp(self.e0 - entropy)

    def fisher_penalty(self) -> torch.Tensor:
        """beta * sum_i F_i (theta_i - theta_i^0)^2 (Eq. 7, 8)."""
        terms = [(f * (p - p0) ** 2).sum() for f, p, p0 in zip(self.fisher, self.trainable, self.anchor)]
        return self.params.fisher_alpha * torch.stack(terms).sum()

    @torch.enable_grad()
    def adapt(self, x: torch.Tensor) -> torch.Tensor:
        if self.params.fisher_alpha > 0 and self.fisher is None:
            raise RuntimeError(
                f"EATA: fisher_alpha={self.params.fisher_alpha} needs prepare(clean_x) with in-distribution "
                "images before adapt(); set fisher_alpha: 0 for ETA"
            )
        x = x.to(self.device)
        with torch.set_grad_enabled(self.batch_coupled):  # only the BatchNorm path backpropagates through this forward
            logits = self.model(x)  # (B, C)
        entropy = softmax_entropy(logits.detach())
        probs = logits.detach().softmax(1)
        reliable, keep = self.select(entropy, probs)
        n_keep, penalty = int(keep.sum()), 0.0  # penalty: the Fisher term's value in this update's loss
        if n_keep:
            new = probs[keep].mean(0)
            a = self.params.ma_alpha
            self.prob_avg = new if self.prob_avg is None else (1 - a) * self.prob_avg + a * new  # Eq. 4
            kept_logits = logits[keep] if self.batch_coupled else self.model(x[keep])
            loss = (self.sample_weight(entropy[keep]) * softmax_entropy(kept_logits)).mean()  # Eq. 6
            if self.fisher is not None:
                reg = self.fisher_penalty()
                loss = loss + reg
                penalty = reg.item()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        n = len(x)
        self.record(
            logits,
            used=n_keep,
            backward_passes=int(n_keep > 0),
            reliable_frac=int(reliable.sum()) / n,
            redundant_frac=int((reliable & ~keep).sum()) / n,
            fisher_loss=penalty,
        )
        return logits.detach()

    def reset(self) -> None:
        super().reset()
        self.prob_avg = None
