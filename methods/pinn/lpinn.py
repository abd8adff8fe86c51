"""Lagrangian PINN: Lagrangian PINNs: A causality-conforming solution to failure modes of
physics-informed neural networks (Mojgani, Balajewicz & Hassanzadeh; arXiv 2205.02902).

For a transport PDE u_t + a(u) u_x = D u_xx the network moves with the flow. Along the
characteristic x(xi, t) that starts at xi,
    dx/dt = a(u),    du/dt = D u_xx,
so the solution is learned on the Lagrangian grid (xi, t) by two networks, u(xi, t) and the
characteristic's mean speed v(xi, t), x(xi, t) = xi + V t v(xi, t), with both equations as
residuals, the initial condition u(xi, 0) = u0(xi) and the boundary conditions (periodic: both
networks periodic in xi; Dirichlet: u = 0 and no displacement at the ends). Writing x this way
(ours) makes x(xi, 0) = xi exact and scales the displacement by V = max |a(u0)|, so the
network's output is of order one whatever the speed (beta = 50 moves points by 50 in unit
time). On the moving grid u_x = u_xi / x_xi and u_xx = (u_x)_xi / x_xi. For pure convection (a = beta, D = 0) both
equations are trivial along characteristics, which is the paper's point: the transport that
makes the Eulerian loss ill-conditioned is carried by the grid.

To compare with a reference on a fixed (Eulerian) grid, u(., t) is interpolated from the moved
points (x(xi_j, t), u(xi_j, t)) on a fine xi grid. Problems without a transport form (Allen-Cahn)
are not problems this method applies to.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from methods.pinn import base
from methods.registry import register


class Lagrangian(nn.Module):
    """The pair of networks, and the Eulerian view of their solution."""

    def __init__(self, setup: base.Setup, pde: base.PDE, n_xi: int):
        super().__init__()
        self.u, self.speed, self.pde = base.Net(setup.architecture, pde), base.Net(setup.architecture, pde), pde
        self.register_buffer("xi", torch.linspace(pde.x_lo, pde.x_hi, n_xi + pde.periodic)[: n_xi])
        self.scale = float(pde.velocity(pde.initial(self.xi[:, None]), pde.coefficients).abs().max().clamp_min(1e-6))

    def shift(self, xi: Tensor, t: Tensor) -> Tensor:
        """x(xi, t) - xi = V t v(xi, t): zero at t = 0 by construction."""
        return self.scale * t * self.speed(xi, t)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """u at Eulerian points (N, 1), (N, 1), one interpolation per distinct time."""
        out = torch.empty_like(x)
        times, where = torch.unique(t[:, 0], return_inverse=True)
        xi = self.xi[:, None].to(x.dtype)
        for k, time in enumerate(times):
            tt = torch.full_like(xi, float(time))
            rows = where == k
            out[rows, 0] = _interpolate(xi + self.shift(xi, tt), self.u(xi, tt), x[rows, 0], self.pde)
        return out


def _interpolate(x_moved: Tensor, u_moved: Tensor, x: Tensor, pde: base.PDE) -> Tensor:
    """Linear interpolation of the points (x_moved, u_moved) at x; periodic problems wrap."""
    xm, um = x_moved[:, 0], u_moved[:, 0]
    if pde.periodic:
        period = pde.x_hi - pde.x_lo
        xm = pde.x_lo + torch.remainder(xm - pde.x_lo, period)
        order = xm.argsort()
        xm, um = xm[order], um[order]
        xm, um = torch.cat([xm[-1:] - period, xm, xm[:1] + period]), torch.cat([um[-1:], um, um[:1]])
    else:
        order = xm.argsort()
        xm, um = xm[order], um[order]
    right = torch.searchsorted(xm, x.contiguous()).clamp(1, len(xm) - 1)
    x0, x1, u0, u1 = xm[right - 1], xm[right], um[right - 1], um[right]
    share = ((x - x0) / (x1 - x0).clamp_min(1e-12)).clamp(0, 1)
    return u0 + share * (u1 - u0)


@register("pinn/lpinn")
class LPINN(base.PINNMethod):
    requires = ("velocity",)

    @dataclass(frozen=True)
    class Params:
        eval_points: int = 1024  # xi grid the Eulerian view interpolates from

    def fit(self, pde: base.PDE, setup: base.Setup) -> base.Fit:
        model = Lagrangian(setup, pde, self.params.eval_points).to(setup.device, setup.dtype)
        window, trainer = base.Window(pde, setup), base.Trainer(model, setup)

        def loss():
            t, xi = window.points()
            tt, xx = (g.reshape(-1, 1) for g in torch.meshgrid(t, xi, indexing="ij"))
            r_u, r_x = lagrangian_residuals(model, pde, xx, tt)
            residual = (r_u.pow(2) + r_x.pow(2)).mean()
            x0 = window.x_initial[:, None]
            t0 = torch.zeros_like(x0)
            initial = (model.u(x0, t0) - window.u_initial).pow(2).mean()
            boundary = _boundary(model, window)
            total = residual + setup.initial_weight * initial + setup.boundary_weight * boundary
            return total, {"loss_residual": residual.detach(), "loss_initial": initial.detach(), "loss_boundary": boundary.detach()}

        trainer.adam(loss, setup.iterations)
        trainer.lbfgs(loss, setup.lbfgs_iterations)
        return base.Fit(predict=model, iterations=trainer.iterations, curves=trainer.curves)


def lagrangian_residuals(model: Lagrangian, pde: base.PDE, xi: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """du/dt - D u_xx and dx/dt - a(u) along the characteristics through (xi, t), each (N, 1)."""
    xi, t = xi.detach().requires_grad_(True), t.detach().requires_grad_(True)
    u, shift = model.u(xi, t), model.shift(xi, t)
    r_x = base.derivative(shift, t) - pde.velocity(u, pde.coefficients)
    r_u = base.derivative(u, t)
    if pde.diffusivity:  # on the moving grid: u_x = u_xi / x_xi, u_xx = (u_x)_xi / x_xi
        x_xi = 1 + base.derivative(shift, xi)
        u_x = base.derivative(u, xi) / x_xi
        r_u = r_u - pde.coefficients[pde.diffusivity] * base.derivative(u_x, xi) / x_xi
    return r_u, r_x


def _boundary(model: Lagrangian, window: base.Window) -> Tensor:
    """Periodic: u and the displacement agree at both ends (exact with harmonics); Dirichlet: u = 0
    and the end points do not move (a(0) = 0 for the problems here)."""
    pde, t = window.pde, window.t_boundary
    if pde.periodic and model.u.exactly_periodic:  # the speed network then is periodic too
        return torch.zeros((), dtype=t.dtype, device=t.device)
    lo, hi = torch.full_like(t, pde.x_lo), torch.full_like(t, pde.x_hi)
    ends = [(model.u(lo, t), model.u(hi, t)), (model.speed(lo, t), model.speed(hi, t))]
    if pde.periodic:
        return sum((a - b).pow(2).mean() for a, b in ends)
    return sum(a.pow(2).mean() + b.pow(2).mean() for a, b in ends)
