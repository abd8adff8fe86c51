"""Curriculum regularization: Characterizing possible failure modes in physics-informed neural
networks (Krishnapriyan, Gholami, Zhe, Kirby & Mahoney, NeurIPS 2021, Section 4.1). Paper: arXiv
2109.01050. Reference code: github.com/a1k12/characterizing-pinns-failure-modes (the PINN and
its L-BFGS settings; it holds no curriculum code).

The PDE regularization starts easy and is made harder stage by stage: the coefficient that makes
the problem hard (the convection speed beta) rises from an easy value (beta = 1) to its target,
and each stage starts from the weights the previous stage trained. Only the last stage solves the
PDE asked for; earlier ones are warm starts.

The ramp is linear in `stages` steps (the stage count is ours: the paper describes the idea, the
released code has no curriculum). Where a problem names no such coefficient the method does not
apply. Budget: the protocol's Adam steps and L-BFGS iterations are split evenly over the stages.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from methods.pinn import base
from methods.registry import register


@register("pinn/curriculum")
class Curriculum(base.PINNMethod):
    requires = ("curriculum",)

    @dataclass(frozen=True)
    class Params:
        stages: int = 10  # coefficient values from the easy one to the target, both included

        def __post_init__(self):
            if self.stages < 1:
                raise ValueError(f"stages must be >= 1, got {self.stages}")

    def schedule(self, pde: base.PDE) -> list[float]:
        """The coefficient at each stage: easy value -> target, evenly spaced."""
        name, easy = pde.curriculum
        return [float(v) for v in np.linspace(easy, pde.coefficients[name], self.params.stages)]

    def fit(self, pde: base.PDE, setup: base.Setup) -> base.Fit:
        net = base.Net(setup.architecture, pde).to(setup.device, setup.dtype)
        trainer = base.Trainer(net, setup)
        name = pde.curriculum[0]
        adam, lbfgs = base.shares(setup.iterations, self.params.stages), base.shares(setup.lbfgs_iterations, self.params.stages)
        for value, adam_steps, lbfgs_steps in zip(self.schedule(pde), adam, lbfgs):
            window = base.Window(pde, setup, coefficients={**pde.coefficients, name: value})

            def loss(window=window, value=value):
                terms = window.terms(net)
                return window.total(terms, terms.residual.mean()), {**base.logged_terms(terms), name: value}

            trainer.adam(loss, adam_steps)
            trainer.lbfgs(loss, lbfgs_steps)
        return base.Fit(predict=net, iterations=trainer.iterations, curves=trainer.curves)
