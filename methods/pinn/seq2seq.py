"""Sequence-to-sequence learning (time marching): Characterizing possible failure modes in
physics-informed neural networks (Krishnapriyan, Gholami, Zhe, Kirby & Mahoney, NeurIPS 2021,
Section 4.2). Paper: arXiv 2109.01050.

Instead of the whole space-time domain at once, the PINN learns one time window at a time:
window k covers [k dt, (k + 1) dt], and its initial condition is the previous window's prediction
at k dt. The solution is the windows' networks pieced together.

Choices of ours (the released code has no seq2seq): `windows` = 20 (dt = 0.05 on t in [0, 1]);
each window starts from the previous window's trained weights (`warm_start`); the network keeps
absolute time as input. Budget: the protocol's Adam steps and L-BFGS iterations are split evenly
over the windows, and each step's n_t x n_x collocation points lie in the current window.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from methods.pinn import base
from methods.registry import register


class Piecewise(nn.Module):
    """u(x, t) from the network of the window holding t (a time on a window edge: the later one)."""

    def __init__(self, nets: list[nn.Module], t_end: float):
        super().__init__()
        self.nets, self.t_end = nn.ModuleList(nets), t_end

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        which = (t[:, 0] / self.t_end * len(self.nets)).floor().clamp(0, len(self.nets) - 1).long()
        out = torch.empty_like(x)
        for k, net in enumerate(self.nets):
            rows = which == k
            if rows.any():
                out[rows] = net(x[rows], t[rows])
        return out


@register("pinn/seq2seq")
class Seq2Seq(base.PINNMethod):
    @dataclass(frozen=True)
    class Params:
        windows: int = 20  # time windows of equal length
        warm_start: bool = True  # each window starts from the previous one's weights (else fresh ones)

        def __post_init__(self):
            if self.windows < 1:
                raise ValueError(f"windows must be >= 1, got {self.windows}")

    def fit(self, pde: base.PDE, setup: base.Setup) -> base.Fit:
        n, dt = self.params.windows, pde.t_end / self.params.windows
        net = base.Net(setup.architecture, pde).to(setup.device, setup.dtype)
        fresh = copy.deepcopy(net.state_dict())
        trainer, trained, initial = base.Trainer(net, setup), [], pde.initial
        for k, adam_steps, lbfgs_steps in zip(range(n), base.shares(setup.iterations, n), base.shares(setup.lbfgs_iterations, n)):
            if k and not self.params.warm_start:
                net.load_state_dict(fresh)
            window = base.Window(pde, setup, t0=k * dt, t1=(k + 1) * dt, initial=initial)

            def loss(window=window):
                terms = window.terms(net)
                return window.total(terms, terms.residual.mean()), {**base.logged_terms(terms), "window": window.t0}

            trainer.adam(loss, adam_steps)
            trainer.lbfgs(loss, lbfgs_steps)
            trained.append(copy.deepcopy(net).requires_grad_(False))
            initial = _at_time(trained[-1], (k + 1) * dt)
        return base.Fit(predict=Piecewise(trained, pde.t_end), iterations=trainer.iterations, curves=trainer.curves)


def _at_time(net: nn.Module, t: float):
    """x (N, 1) -> u(x, t) of a trained window: the next window's initial condition."""
    return lambda x: net(x, torch.full_like(x, t))
