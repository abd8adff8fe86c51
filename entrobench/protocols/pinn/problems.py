"""The equations (the family's datasets), each as the methods see it (`methods.pinn.base.PDE`),
with the grid its reference solution lives on and the published solution it can be checked
against.

- convection: u_t + beta u_x = 0, x in [0, 2 pi), t in [0, 1], u0 = sin x, periodic; exact
  solution sin(x - beta t). Krishnapriyan et al. (NeurIPS 2021), Section 3.1; their grid.
- allen_cahn: u_t - d u_xx + r u^3 - r u = 0 with d = 1e-4, r = 5, x in [-1, 1], t in [0, 1],
  u0 = x^2 cos(pi x), periodic. Raissi et al. (2019) and the causal-PINN paper; AC.mat's grid.
- burgers: u_t + u u_x - nu u_xx = 0 with nu = 0.01 / pi, x in [-1, 1], t in [0, 1],
  u0 = -sin(pi x), u(-1) = u(1) = 0. Raissi et al. (2019); burgers_shock.mat's grid.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from methods.pinn.base import PDE
# torch is imported where a PDE is made: the cards' checks read EQUATIONS without paying for it


@dataclass(frozen=True)
class Equation:
    coefficients: dict
    x_lo: float
    x_hi: float
    t_end: float
    periodic: bool
    initial: object  # u0(x) for numpy arrays and torch tensors alike
    grid: dict  # the reference grid: nx points in x (periodic: end point left out), nt times in [0, t_last]
    reference: str  # "analytic" or "etdrk4" (reference.py)
    data_file: str = ""  # Raissi's published solution under the data root, where there is one
    solver: dict = field(default_factory=dict)  # ETDRK4 settings: modes, dt (reference.py)


def _sin(x):  # numpy arrays and numbers, or torch tensors
    return np.sin(x) if isinstance(x, (np.ndarray, np.generic, float, int)) else x.sin()


def _cos(x):
    return np.cos(x) if isinstance(x, (np.ndarray, np.generic, float, int)) else x.cos()


EQUATIONS = {
    "convection": Equation(
        coefficients={"beta": 1.0}, x_lo=0.0, x_hi=2 * math.pi, t_end=1.0, periodic=True, initial=_sin,
        grid={"nx": 256, "nt": 100, "t_last": 1.0}, reference="analytic",
    ),
    "allen_cahn": Equation(
        coefficients={"diffusion": 1e-4, "reaction": 5.0}, x_lo=-1.0, x_hi=1.0, t_end=1.0, periodic=True,
        initial=lambda x: x**2 * _cos(math.pi * x),
        grid={"nx": 512, "nt": 201, "t_last": 1.0}, reference="etdrk4", data_file="pinns_raissi/AC.mat",
        solver={"modes": 1024, "dt": 5e-4},
    ),
    "burgers": Equation(
        coefficients={"nu": 0.01 / math.pi}, x_lo=-1.0, x_hi=1.0, t_end=1.0, periodic=False,
        initial=lambda x: -_sin(math.pi * x),
        grid={"nx": 256, "nt": 100, "t_last": 0.99, "x_end_point": True}, reference="etdrk4",
        data_file="pinns_raissi/burgers_shock.mat", solver={"modes": 2048, "dt": 2e-4},
    ),
}


def make_pde(equation: str, coefficients: dict) -> PDE:
    """The PDE of `equation` with `coefficients` (every coefficient of the equation, by name)."""
    import torch

    from methods.pinn.base import PDE

    eq = EQUATIONS[equation]
    common = {"name": equation, "x_lo": eq.x_lo, "x_hi": eq.x_hi, "t_end": eq.t_end, "periodic": eq.periodic,
              "initial": eq.initial, "coefficients": dict(coefficients)}
    if equation == "convection":
        return PDE(**common, operator=lambda f, c: c["beta"] * f.u_x, second_order=False,
                   velocity=lambda u, c: torch.full_like(u, c["beta"]), curriculum=("beta", 1.0))
    if equation == "allen_cahn":
        # curriculum (our extension): the reaction rate from 1 (slow interface sharpening) to 5
        return PDE(**common, operator=lambda f, c: -c["diffusion"] * f.u_xx + c["reaction"] * (f.u**3 - f.u),
                   second_order=True, curriculum=("reaction", 1.0))
    # burgers; curriculum (our extension): the viscosity from 10 times the target down to it
    return PDE(**common, operator=lambda f, c: f.u * f.u_x - c["nu"] * f.u_xx, second_order=True,
               velocity=lambda u, c: u, diffusivity="nu", curriculum=("nu", 0.1 / math.pi))


def reference_grid(equation: str) -> tuple[np.ndarray, np.ndarray]:
    """x (nx,) and t (nt,) of the reference solution: the published .mat files' grids."""
    eq = EQUATIONS[equation]
    g = eq.grid
    x = np.linspace(eq.x_lo, eq.x_hi, g["nx"], endpoint=bool(g.get("x_end_point")))
    return x, np.linspace(0.0, g["t_last"], g["nt"])
