"""The Lagrangian PINN: its Eulerian view, and its residuals on the exact characteristics."""
import math

import torch
from pinn_tiny import Exact, pde, tiny_setup

from methods.pinn.lpinn import LPINN, _interpolate, lagrangian_residuals


def test_interpolation_wraps_moved_points_around_a_periodic_domain():
    convection = pde("convection", beta=50.0)
    xi = torch.linspace(0, 2 * math.pi, 257, dtype=torch.float64)[:-1]
    moved = xi + 50.0 * 0.3  # every point carried 15 units to the right: two and a half turns
    x = torch.linspace(0, 2 * math.pi, 33, dtype=torch.float64)[:-1]
    u = _interpolate(moved[:, None], torch.sin(xi)[:, None], x, convection)
    assert torch.allclose(u, torch.sin(x - 15.0), atol=1e-3)


def test_interpolation_on_a_bounded_domain_keeps_the_ends():
    burgers = pde("burgers")
    xi = torch.linspace(-1, 1, 5, dtype=torch.float64)
    u = _interpolate(xi[:, None], (xi**2)[:, None], torch.tensor([-1.0, -0.25, 1.0], dtype=torch.float64), burgers)
    assert torch.allclose(u, torch.tensor([1.0, 0.125, 1.0], dtype=torch.float64))


def _model(equation, **coefficients):
    torch.manual_seed(0)
    return LPINN(LPINN.Params(eval_points=64)).fit(pde(equation, **coefficients), tiny_setup(iterations=1)).predict


def _points():
    xi = torch.linspace(-1, 1, 7, dtype=torch.float64).repeat(3)[:, None]
    return xi, torch.tensor([0.0, 0.3, 0.9], dtype=torch.float64).repeat_interleave(7)[:, None]


def test_convection_characteristics_carry_the_initial_state_unchanged():
    model = _model("convection", beta=20.0)
    model.u, model.speed = Exact(lambda xi, t: torch.sin(xi)), Exact(lambda xi, t: 1 + 0 * xi)  # x = xi + 20 t
    assert model.scale == 20.0
    r_u, r_x = lagrangian_residuals(model, pde("convection", beta=20.0), *_points())
    assert r_u.abs().max() < 1e-14 and r_x.abs().max() < 1e-12
    x = torch.linspace(0, 2 * math.pi, 9, dtype=torch.float64)[:-1, None]
    with torch.no_grad():  # the Eulerian view of that solution is sin(x - 20 t)
        assert torch.allclose(model(x, torch.full_like(x, 0.5)), torch.sin(x - 10.0), atol=1e-3)


def test_burgers_residuals_vanish_on_an_exact_expanding_solution():
    # u = x / (1 + t) solves u_t + u u_x = nu u_xx: characteristics x = xi (1 + t) carry u = xi
    model = _model("burgers")
    model.u, model.speed = Exact(lambda xi, t: xi), Exact(lambda xi, t: xi / model.scale)
    r_u, r_x = lagrangian_residuals(model, pde("burgers"), *_points())
    assert r_u.abs().max() < 1e-14 and r_x.abs().max() < 1e-14
    model.u = Exact(lambda xi, t: xi * (1 + t))  # wrong: du/dt = xi along the characteristic
    r_u, r_x = lagrangian_residuals(model, pde("burgers"), *_points())
    xi, t = _points()
    assert torch.allclose(r_u, xi) and torch.allclose(r_x, -xi * t)
