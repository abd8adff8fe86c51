"""Vanilla PINN: Physics-informed neural networks (Raissi, Perdikaris & Karniadakis, J. Comput.
Phys. 378, 2019). Paper: arXiv 1711.10561. Reference code: github.com/maziarraissi/PINNs.

One network over the whole space-time domain; the loss is the mean squared residual at the
collocation points plus the initial and boundary penalties, all times weighted alike:
    L = mean_i L_r(t_i) + lambda_0 L_0 + lambda_b L_b
minimized with Adam, then L-BFGS where the protocol asks for it (the paper's examples use L-BFGS).
"""
from __future__ import annotations

from dataclasses import dataclass

from methods.pinn import base
from methods.registry import register


@register("pinn/vanilla")
class Vanilla(base.PINNMethod):
    @dataclass(frozen=True)
    class Params:
        pass  # nothing to set: the network, points, optimizer and loss weights are the protocol's

    def fit(self, pde: base.PDE, setup: base.Setup) -> base.Fit:
        net = base.Net(setup.architecture, pde).to(setup.device, setup.dtype)
        window, trainer = base.Window(pde, setup), base.Trainer(net, setup)

        def loss():
            terms = window.terms(net)
            return window.total(terms, terms.residual.mean()), base.logged_terms(terms)

        trainer.adam(loss, setup.iterations)
        trainer.lbfgs(loss, setup.lbfgs_iterations)
        return base.Fit(predict=net, iterations=trainer.iterations, curves=trainer.curves)

