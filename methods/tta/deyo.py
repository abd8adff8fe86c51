"""DeYO: Entropy is not Enough for Test-Time Adaptation: From the Perspective of Disentangled Factors.
Jonghyun Lee, Dahuin Jung, Saehyung Lee, Junsung Park, Juhyeon Shin, Uiwon Hwang, Sungroh Yoon.
ICLR 2024. Paper: arXiv 2403.07366. Reference code: github.com/Jhyun17/DeYO.
(Eq. n) = the paper's equations.

"Destroy Your Object": a confident prediction is trusted only if it rests on the object's shape.
The shape is destroyed by cutting the image into a patch_len x patch_len grid of patches and
shuffling them; the Pseudo-Label Probability Difference
    PLPD(x) = p(y_hat | x) - p(y_hat | x'),   y_hat = argmax p(. | x),  x' = shuffled x    (Eq. 7)
is large when the prediction depended on the arrangement. Samples enter the entropy loss if
E(x) < tau_Ent = 0.5 ln C and PLPD(x) > tau_PLPD = 0.2 (Eq. 8), each weighted by
    alpha(x) = 1/exp(E(x) - Ent_0) + 1/exp(-PLPD(x)),   Ent_0 = 0.4 ln C                  (Eq. 10)
and one optimizer step is taken on the mean weighted entropy (Eq. 9), updating the norm layers'
affine parameters as Tent does. The extra forward on shuffled images takes no gradient.

Where the reference code, not the paper text, decided:
- only the samples that pass the entropy filter are shuffled and re-predicted; the shuffled
  batch is normalized with its own BatchNorm statistics;
- an image whose side is not a multiple of patch_len is resized (bilinear) to the nearest
  smaller multiple, shuffled and resized back (torchvision's Resize on a tensor batch); 224,
  32 and 28 px images at patch_len 4 need no resizing, so `antialias` matters only for other
  sides or patch counts. The reference's environment.yaml pins torchvision 0.11.2, whose
  tensor Resize does not antialias (antialias=None meant False until torchvision 0.17, which
  made True the default): False, the default here, is what produced the paper's numbers; True
  is the same code run under torchvision >= 0.17;
- the norm layers adapted are the reference's collect_params choice, shared with SAR
  (skip_top_layers; see methods/tta/sar.py): 86 of ResNet-50's 106 norm affine tensors, all
  of the small CNN's and WRN-28-10's;
- reweight_ent / reweight_plpd scale the two terms of alpha (the code's 0/1 ablation switches).
Choices of this implementation:
- only the default object-destructive transformation (patch shuffling) is implemented; the
  code's pixel-shuffle and occlusion ablations are not;
- randomness comes only from torch's global CPU generator, so a seed fixes the shuffles on
  every device.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from methods.registry import register
from methods.tta.base import OptimizerParams, TTAMethod, softmax_entropy


def shuffle_patches(x: torch.Tensor, grid: int, antialias: bool = False) -> torch.Tensor:
    """Cut each image of x (B, ch, H, W) into grid x grid patches and permute them at random,
    a fresh permutation per image. Shape is preserved; a side that is not a multiple of grid
    is resized (bilinear, antialiased or not) to one and back."""
    b, ch, height, width = x.shape
    ph, pw = height // grid, width // grid  # patch size in pixels
    if ph == 0 or pw == 0:
        raise ValueError(f"DeYO: a {height}x{width} image cannot be cut into {grid}x{grid} patches (lower patch_len)")
    resized = (ph * grid, pw * grid) != (height, width)
    if resized:
        x = F.interpolate(x, size=(ph * grid, pw * grid), mode="bilinear", align_corners=False, antialias=antialias)
    patches = x.reshape(b, ch, grid, ph, grid, pw).permute(0, 2, 4, 1, 3, 5).reshape(b, grid * grid, ch, ph, pw)
    order = torch.argsort(torch.rand(b, grid * grid), dim=1).to(x.device)  # CPU generator: same on any device
    patches = patches[torch.arange(b, device=x.device)[:, None], order]
    x = patches.reshape(b, grid, grid, ch, ph, pw).permute(0, 3, 1, 4, 2, 5).reshape(b, ch, grid * ph, grid * pw)
    if resized:
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=antialias)
    return x


@register("tta/deyo")
class DeYO(TTAMethod):
    @dataclass(frozen=True)
    class Params(OptimizerParams):  # optimizer: SGD, lr 0.00025, momentum 0.9 (paper, ResNet-50 at batch 64)
        deyo_margin_frac: float = 0.5  # entropy filter tau_Ent = deyo_margin_frac * ln(C), units of ln C (Eq. 8)
        e0_frac: float = 0.4  # weighting margin Ent_0 = e0_frac * ln(C), units of ln C (Eq. 10)
        plpd_threshold: float = 0.2  # tau_PLPD, a difference of probabilities in [-1, 1] (Eq. 8)
        patch_len: int = 4  # patches per image side for the shuffle (4 -> 16 patches), any image size (Eq. 7)
        reweight_ent: float = 1.0  # weight of the entropy term 1/exp(E - Ent_0) in alpha (Eq. 10)
        reweight_plpd: float = 1.0  # weight of the PLPD term 1/exp(-PLPD) in alpha (Eq. 10)
        antialias: bool = False  # antialias the shuffle's resize (torchvision >= 0.17's Resize; the authors' 0.11.2 did not)
        skip_top_layers: bool = True  # leave layer4 (ResNet) / blocks 9-11 (ViT) as the reference does; False: every norm layer

    def __init__(self, model: torch.nn.Module, params: "DeYO.Params", n_classes: int):
        super().__init__(model, params, n_classes)
        self.adapt_norm_affine(params, params.skip_top_layers)
        self.ent_margin = params.deyo_margin_frac * math.log(n_classes)  # nats
        self.e0 = params.e0_frac * math.log(n_classes)  # nats
        self.save_state()

    @torch.no_grad()
    def plpd(self, x: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """PLPD (Eq. 7) of images x (K, ch, H, W) whose softmax is probs (K, C) -> (K,)."""
        y_hat = probs.argmax(1, keepdim=True)
        probs_shuffled = self.model(shuffle_patches(x, self.params.patch_len, self.params.antialias)).softmax(1)
        return (probs.gather(1, y_hat) - probs_shuffled.gather(1, y_hat)).squeeze(1)

    def sample_weight(self, entropy: torch.Tensor, plpd: torch.Tensor) -> torch.Tensor:
        """alpha = 1/exp(E - Ent_0) + 1/exp(-PLPD) (Eq. 10)."""
        p = self.params
        return p.reweight_ent * torch.exp(self.e0 - entropy) + p.reweight_plpd * torch.exp(plpd)

    @torch.enable_grad()
    def adapt(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device)
        logits = self.model(x)  # (B, C), the predictions
        entropy = softmax_entropy(logits)
        reliable = entropy.detach() < self.ent_margin  # first half of Eq. 8
        n_reliable, n_used, plpd_mean = int(reliable.sum()), 0, 0.0
        if n_reliable:
            score = self.plpd(x[reliable], logits.detach()[reliable].softmax(1))  # (K,)
            plpd_mean = score.mean().item()
            keep = score > self.params.plpd_threshold  # second half of Eq. 8
            n_used = int(keep.sum())
        if n_used:
            kept_entropy = entropy[reliable][keep]
            loss = (self.sample_weight(kept_entropy.detach(), score[keep]) * kept_entropy).mean()  # Eq. 9
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        self.record(logits, used=n_used, backward_passes=int(n_used > 0), reliable_frac=n_reliable / len(x), plpd_mean=plpd_mean)
        return logits.detach()
