"""Source: the unadapted model, the reference row of every TTA table.

No paper of its own: it is the "source" / "no adaptation" baseline of Tent (Wang et al., ICLR
2021, arXiv 2006.10726; code github.com/DequanWang/tent), EATA, SAR and DeYO. The model predicts
in eval mode with the statistics and weights it was trained with; nothing is updated.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.registry import register
from methods.tta.base import TTAMethod


@register("tta/source")
class Source(TTAMethod):
    @dataclass(frozen=True)
    class Params:  # nothing to set: the source model is used as trained
        pass

    def __init__(self, model: torch.nn.Module, params: "Source.Params", n_classes: int):
        super().__init__(model, params, n_classes)
        self.model.eval()  # BatchNorm uses the training-set running statistics
        self.save_state()

    @torch.no_grad()
    def adapt(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x.to(self.device))
        self.record(logits, used=0, backward_passes=0)
        return logits
