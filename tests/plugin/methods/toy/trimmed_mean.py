"""A trimmed mean of a bootstrap resample: drop `trim` of each tail, average the rest."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from methods.registry import register


@register("toy/trimmed_mean")
class TrimmedMean:
    @dataclass(frozen=True)
    class Params:
        trim: float = 0.1  # share of each tail left out

    def __init__(self, params: Params):
        self.params = params

    def estimate(self, values: np.ndarray, rng: np.random.Generator) -> float:
        resample = np.sort(rng.choice(values, size=len(values)))
        cut = int(self.params.trim * len(resample))
        return float(resample[cut : len(resample) - cut].mean())
