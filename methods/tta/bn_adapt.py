"""BN adapt: Improving robustness against common corruptions by covariate shift adaptation.
Steffen Schneider, Evgenia Rusak, Luisa Eck, Oliver Bringmann, Wieland Brendel, Matthias Bethge.
NeurIPS 2020. Paper: arXiv 2006.16971. Reference code: github.com/bethgelab/robustness
(robusta/batchnorm/bn.py). (Eq. n) = the paper's equations.

Every BatchNorm layer normalizes with statistics re-estimated on the test batch instead of the
training-set running statistics; no parameter is learned and no gradient is taken. With a prior
of strength N (a pseudo sample count) the source statistics are mixed in, for a batch of n:
    mu = N/(N+n) mu_s + n/(N+n) mu_t,   var = N/(N+n) var_s + n/(N+n) var_t          (Eq. 2)
N = 0 is pure test-batch statistics, the setting Tent compares against; N -> inf is the source.

A model without BatchNorm (GroupNorm, LayerNorm) has no batch statistics to re-estimate, so BN
adapt is then the Source model, prediction for prediction.

Where this follows neither text literally: the reference code's prior is a fixed weight in
[0, 1] and its target variance is the unbiased estimate; here the prior is the paper's N and
var_t is the biased batch variance that BatchNorm itself normalizes with, so N = 0 is exactly
BatchNorm in train mode.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

from methods.registry import register
from methods.tta.base import TTAMethod, use_test_batch_statistics


@register("tta/bn_adapt")
class BNAdapt(TTAMethod):
    @dataclass(frozen=True)
    class Params:
        prior_strength: float = 0.0  # N, pseudo sample count of the source statistics (Eq. 2); 0 = test batch only

        def __post_init__(self):
            if self.prior_strength < 0:
                raise ValueError(f"prior_strength must be >= 0, got {self.prior_strength}")

    def __init__(self, model: torch.nn.Module, params: "BNAdapt.Params", n_classes: int):
        super().__init__(model, params, n_classes)
        self.model.requires_grad_(False)
        if params.prior_strength == 0:
            use_test_batch_statistics(self.model)
        else:
            # BatchNorm stays in eval mode; each layer's output is recomputed with the mixed statistics.
            self.model.eval()
            for module in self.model.modules():
                if isinstance(module, _BatchNorm):
                    if module.running_mean is None:
                        raise ValueError("BNAdapt: prior_strength > 0 needs the source running statistics, but a BatchNorm layer has none")
                    module.register_forward_hook(self._normalize_with_prior)
        self.save_state()

    def _normalize_with_prior(self, module: _BatchNorm, inputs: tuple, _output: torch.Tensor) -> torch.Tensor:
        x = inputs[0]  # (B, ch, ...): statistics per channel over batch and space
        dims = [d for d in range(x.dim()) if d != 1]
        var_t, mu_t = torch.var_mean(x, dim=dims, correction=0)
        w_source = self.params.prior_strength / (self.params.prior_strength + x.shape[0])
        mu = w_source * module.running_mean + (1 - w_source) * mu_t
        var = w_source * module.running_var + (1 - w_source) * var_t
        return F.batch_norm(x, mu, var, module.weight, module.bias, training=False, eps=module.eps)

    @torch.no_grad()
    def adapt(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x.to(self.device))
        self.record(logits, used=0, backward_passes=0)
        return logits
