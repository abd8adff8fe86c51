"""The entropy-performance law R = -a exp(H) + b: fitting, smoothing, the ceiling."""
from __future__ import annotations

import math

import numpy as np

from entrobench.protocols.rlvr.law import fit_law, moving_average


def test_fit_recovers_a_and_b_from_noisy_synthetic_steps():
    rng = np.random.default_rng(0)
    h = np.linspace(0.45, 0.12, 250)  # entropy falling over a run
    r = -1.1 * np.exp(h) + 1.9 + rng.normal(0, 0.01, h.shape)
    fit = fit_law(h, r)
    assert abs(fit.a - 1.1) < 0.05 and abs(fit.b - 1.9) < 0.05
    assert fit.r2 > 0.95 and fit.n == 250
    assert abs(fit.ceiling - 0.8) < 0.02


def test_smoothing_raises_r2_on_noisy_steps():
    rng = np.random.default_rng(1)
    h = np.linspace(0.45, 0.12, 250)
    r = -1.0 * np.exp(h) + 1.8 + rng.normal(0, 0.05, h.shape)
    assert fit_law(h, r, smooth=10).r2 > fit_law(h, r).r2


def test_moving_average_is_valid_mode():
    assert moving_average([1, 2, 3, 4], 2).tolist() == [1.5, 2.5, 3.5]
    assert moving_average([1, 2], 5).tolist() == [1, 2]  # too short to smooth: unchanged


def test_fit_drops_nan_and_gives_nan_on_too_few_points():
    fit = fit_law([0.3, math.nan, 0.2, 0.1, 0.05], [0.2, 0.3, 0.4, 0.5, 0.55])
    assert fit.n == 4 and np.isfinite(fit.a)
    assert math.isnan(fit_law([0.3, 0.2], [0.1, 0.2]).a)


def test_constant_reward_has_no_r2():
    assert math.isnan(fit_law([0.3, 0.2, 0.1], [0.5, 0.5, 0.5]).r2)
