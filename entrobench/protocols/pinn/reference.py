"""Reference solutions, made once per equation and coefficients by the DAG's build rule and read
by every cell: the exact solution of convection, and a pseudo-spectral solution with fourth-order
exponential time differencing (ETDRK4, Cox & Matthews 2002, in the contour-integral form of
Kassam & Trefethen, SISC 2005) for Allen-Cahn and Burgers.

Both are solved on a periodic Fourier grid finer than the reference grid (AC.mat's 512 points,
burgers_shock.mat's 256) and evaluated there by their Fourier series. Burgers' Dirichlet problem
is its periodic one: u0 = -sin(pi x) is odd and 2-periodic, the equation keeps u odd, so u = 0 at
x = +-1 for all t. The steep front (width about 2 nu / |u| = 0.008 at t = 1) spans 8 grid points
at 2048 modes; the nonlinear terms are dealiased with the 2/3 rule.

Settings (problems.py): Allen-Cahn 1024 modes, dt = 5e-4; Burgers 2048 modes, dt = 2e-4. Against
the published solutions (AC.mat: Chebfun, 512 modes; burgers_shock.mat) the relative L2 error is
8.2e-6 and 2.2e-11; halving dt changes neither by more than 1e-11, doubling the modes changes
Allen-Cahn by 3e-6 (the published file's own resolution error is the larger). The tests hold the
agreement to 5e-5 and 1e-8 (tests/protocols/pinn/test_reference.py, skipped without the data).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from entrobench.protocols.pinn.problems import EQUATIONS, reference_grid

FILE = "reference.npz"


def etdrk4(u0: np.ndarray, linear: np.ndarray, nonlinear, dt: float, times: np.ndarray, contour_points: int = 64) -> np.ndarray:
    """Integrate v_t = L v + N(v) for Fourier coefficients v (rfft of u0), diagonal L; returns the
    coefficients at each of `times` (multiples of dt), shape (len(times), len(v))."""
    h = dt
    E, E2 = np.exp(h * linear), np.exp(h * linear / 2)
    roots = np.exp(1j * np.pi * (np.arange(1, contour_points + 1) - 0.5) / contour_points)
    LR = h * linear[:, None] + roots[None, :]  # the phi-functions by contour averages: no cancellation near L = 0
    Q = h * np.real(np.mean((np.exp(LR / 2) - 1) / LR, axis=1))
    f1 = h * np.real(np.mean((-4 - LR + np.exp(LR) * (4 - 3 * LR + LR**2)) / LR**3, axis=1))
    f2 = h * np.real(np.mean((2 + LR + np.exp(LR) * (LR - 2)) / LR**3, axis=1))
    f3 = h * np.real(np.mean((-4 - 3 * LR - LR**2 + np.exp(LR) * (4 - LR)) / LR**3, axis=1))
    steps = np.rint(np.asarray(times) / dt).astype(int)
    if not np.allclose(steps * dt, times, atol=1e-9 * max(1.0, float(np.max(times)))):
        raise ValueError(f"output times must be multiples of dt = {dt}")
    v, out, done = np.fft.rfft(u0), [], 0
    for target in steps:
        for _ in range(target - done):
            Nv = nonlinear(v)
            a = E2 * v + Q * Nv
            Na = nonlinear(a)
            b = E2 * v + Q * Na
            Nb = nonlinear(b)
            c = E2 * a + Q * (2 * Nb - Nv)
            v = E * v + f1 * Nv + 2 * f2 * (Na + Nb) + f3 * nonlinear(c)
        done = target
        out.append(v.copy())
    return np.array(out)


def fourier_series(coeffs: np.ndarray, n: int, x: np.ndarray, x_lo: float, length: float) -> np.ndarray:
    """Evaluate the real trigonometric polynomial with rfft coefficients (..., n // 2 + 1) of n
    samples on [x_lo, x_lo + length) at points x: (..., len(x))."""
    k = np.arange(coeffs.shape[-1])
    weight = np.where((k == 0) | (2 * k == n), 1.0, 2.0)  # the Nyquist mode is real and counted once
    phase = np.exp(2j * np.pi * np.outer(k, x - x_lo) / length)
    return np.real((coeffs * weight) @ phase) / n


def solve(equation: str, coefficients: dict, modes: int, dt: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ETDRK4 solution of allen_cahn or burgers on the reference grid: x (nx,), t (nt,), u (nt, nx)."""
    eq = EQUATIONS[equation]
    x, t = reference_grid(equation)
    length = eq.x_hi - eq.x_lo
    grid = eq.x_lo + length * np.arange(modes) / modes
    k = 2 * np.pi / length * np.arange(modes // 2 + 1)
    keep = np.arange(modes // 2 + 1) < modes / 3  # the 2/3 dealiasing rule
    if equation == "allen_cahn":  # u_t = d u_xx + r u - r u^3
        d, r = coefficients["diffusion"], coefficients["reaction"]
        linear = -d * k**2 + r

        def nonlinear(v):
            return keep * np.fft.rfft(-r * np.fft.irfft(v, modes) ** 3)
    elif equation == "burgers":  # u_t = nu u_xx - (u^2 / 2)_x
        linear = -coefficients["nu"] * k**2

        def nonlinear(v):
            return keep * (-0.5j * k) * np.fft.rfft(np.fft.irfft(v, modes) ** 2)
    else:
        raise ValueError(f"no numerical solver for {equation!r}")
    coeffs = etdrk4(eq.initial(grid), linear, nonlinear, dt, t)
    return x, t, fourier_series(coeffs, modes, x, eq.x_lo, length)


def exact_convection(beta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, t = reference_grid("convection")
    return x, t, np.sin(x[None, :] - beta * t[:, None])


def reference_config(equation: str, coefficients: dict) -> dict:
    """Everything a reference depends on (besides the code): the build's config."""
    eq = EQUATIONS[equation]
    return {"equation": equation, "coefficients": dict(sorted(coefficients.items())), "grid": eq.grid,
            "method": eq.reference, "solver": eq.solver}


def make_reference(run) -> dict:
    """The build's `make` (entrobench.family.BuildRun): write reference.npz (x, t, u (nt, nx))."""
    config = run.config
    if config["method"] == "analytic":
        x, t, u = exact_convection(config["coefficients"]["beta"])
    else:
        x, t, u = solve(config["equation"], config["coefficients"], **config["solver"])
    if not np.isfinite(u).all():
        raise FloatingPointError(f"{config['equation']}: the reference solver diverged ({config['solver']})")
    np.savez(Path(run.out) / FILE, x=x, t=t, u=u)
    return {"equation": config["equation"], "method": config["method"], "nx": len(x), "nt": len(t), "u_max": float(np.abs(u).max())}


def load_reference(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(Path(folder) / FILE, allow_pickle=False) as data:
        return data["x"], data["t"], data["u"]


def read_published(equation: str, data_root: Path | None) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Raissi's published solution as x (nx,), t (nt,), u (nt, nx), or None where the data root lacks it."""
    name = EQUATIONS[equation].data_file
    if not name or data_root is None or not (Path(data_root) / name).is_file():
        return None
    from scipy.io import loadmat

    data = loadmat(Path(data_root) / name)
    if equation == "allen_cahn":
        return data["x"].ravel(), data["tt"].ravel(), data["uu"].T
    return data["x"].ravel(), data["t"].ravel(), data["usol"].T


def relative_l2(u: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(u - reference) / np.linalg.norm(reference))

