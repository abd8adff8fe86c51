"""The entropy-performance law of arXiv 2505.22617 (Sec. 3, Eq. 1): R = -a exp(H) + b.

Fitted by least squares, which is linear in (a, b) with x = exp(H): no optimizer, no start
values. The paper fits it over the steps of a run (validation accuracy against policy entropy);
here over per-step (entropy, rollout reward), optionally smoothed with a moving average first
(the per-step reward of 256 rollouts is noisy). The ceiling is the law at H = 0: -a + b.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LawFit:
    a: float
    b: float
    r2: float  # coefficient of determination of the fit on the points it was fitted on
    n: int  # points fitted

    @property
    def ceiling(self) -> float:
        """Predicted reward at zero entropy, -a + b."""
        return self.b - self.a


def moving_average(values, window: int) -> np.ndarray:
    """Mean over each run of `window` consecutive values ('valid' mode: len - window + 1 values)."""
    values = np.asarray(values, dtype=float)
    if window <= 1 or len(values) < window:
        return values
    return np.convolve(values, np.ones(window) / window, mode="valid")


def fit_law(entropy, reward, smooth: int = 1) -> LawFit:
    """Fit R = -a exp(H) + b to paired sequences; nan values are dropped."""
    h, r = moving_average(entropy, smooth), moving_average(reward, smooth)
    keep = np.isfinite(h) & np.isfinite(r)
    h, r = h[keep], r[keep]
    if len(h) < 3:
        return LawFit(math.nan, math.nan, math.nan, len(h))
    x = np.exp(h)
    design = np.stack([-x, np.ones_like(x)], 1)
    (a, b), *_ = np.linalg.lstsq(design, r, rcond=None)
    residual = r - design @ np.array([a, b])
    total = ((r - r.mean()) ** 2).sum()
    r2 = 1.0 - (residual**2).sum() / total if total > 0 else math.nan
    return LawFit(float(a), float(b), float(r2), len(h))
