"""Tiny problems and training setups for the PINN method tests (seconds on one core)."""
from __future__ import annotations

import math

import torch
from torch import nn

from entrobench.protocols.pinn.problems import EQUATIONS, make_pde
from methods.pinn.base import Architecture, Collocation, Setup


def tiny_setup(**changes) -> Setup:
    base = {"architecture": Architecture(width=8, depth=2), "collocation": Collocation(n_t=4, n_x=6),
            "iterations": 6, "n_initial": 9, "n_boundary": 5, "log_every": 2, "dtype": torch.float64}
    return Setup(**{**base, **changes})


def pde(equation: str, **coefficients):
    return make_pde(equation, {**EQUATIONS[equation].coefficients, **coefficients})


class Exact(nn.Module):
    """A 'network' that is a closed-form function of (x, t): residuals of exact solutions."""

    def __init__(self, fn, exactly_periodic: bool = False):
        super().__init__()
        self.fn, self.exactly_periodic = fn, exactly_periodic

    def forward(self, x, t):
        return self.fn(x, t)


def uniform_allen_cahn(u0: float, rate: float):
    """The spatially uniform Allen-Cahn solution: u' = r u - r u^3, u(0) = u0."""
    return lambda x, t: u0 * torch.exp(rate * t) / torch.sqrt(1 - u0**2 + u0**2 * torch.exp(2 * rate * t)) + 0 * x


def burgers_front(nu: float, speed: float = 0.3, height: float = 0.7):
    """u = c - a tanh(a (x - c t) / (2 nu)): an exact travelling front of viscous Burgers."""
    return lambda x, t: speed - height * torch.tanh(height * (x - speed * t) / (2 * nu))


PI = math.pi
