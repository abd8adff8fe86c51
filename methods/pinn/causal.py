"""Causal training: Respecting causality is all you need for training physics-informed neural
networks (Wang, Sankaran & Perdikaris; arXiv 2203.07404, CMAME 421, 2024). Reference code:
github.com/PredictiveIntelligenceLab/CausalPINNs (its README: the algorithm is patented by the
University of Pennsylvania and may not be used commercially).

The residual loss is split by time level t_1 < ... < t_Nt (the chunks). Chunk i is weighted by
    w_i = exp(-eps * sum_{k<i} L_r(t_k))
computed from the current chunk losses but not back-propagated (the authors' stop_gradient), so
a time enters the loss only once every earlier time is resolved:
    L = mean_i w_i L_r(t_i) + lambda_0 L_0 + lambda_b L_b.
Algorithm 1, with the values of the authors' KS code: eps runs through [1e-2, 1e-1, 1, 10, 100];
each value trains until min_i w_i > delta = 0.99 (every time resolved at that eps) or its budget
is spent. min_i w_i is
the paper's convergence indicator: logged along training, and its last value is a metric.

Budget: the protocol's Adam steps are shared by the eps stages, each getting the remaining steps
over the remaining stages (a stage that stops early passes its steps on); the last stage stopping
early ends training, so `iterations` can fall short of the budget. The authors use Adam only.
Where the protocol asks for L-BFGS (Krishnapriyan et al.'s optimizer) it continues at the last
eps, or runs the whole schedule where there were no Adam steps, in rounds of 50 iterations with
the weights held at their value at each round's start (ours: a line search needs one objective),
the stopping rule checked between rounds.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from methods.pinn import base
from methods.registry import register


def causal_weights(chunk_losses: torch.Tensor, epsilon: float, before: torch.Tensor | float = 0.0) -> torch.Tensor:
    """w_i = exp(-epsilon * (before + sum_{k<i} L_k)) for chunk losses L (n_t,), ordered in time;
    `before` is the loss of what precedes the first chunk (0, or the weighted initial loss). The
    weights carry no gradient: they steer the loss, they are not minimized."""
    losses = chunk_losses.detach()
    earlier = torch.cumsum(losses, 0) - losses  # sum over k < i: the authors' strictly-lower-triangular M @ L
    return torch.exp(-epsilon * (earlier + (before.detach() if torch.is_tensor(before) else before)))


LBFGS_ROUND = 50  # L-BFGS iterations between recomputations of the weights


@register("pinn/causal")
class Causal(base.PINNMethod):
    @dataclass(frozen=True)
    class Params:
        epsilons: list = field(default_factory=lambda: [1e-2, 1e-1, 1.0, 10.0, 100.0])  # causality parameter schedule (Alg. 1)
        delta: float = 0.99  # a stage ends when min_i w_i > delta (Alg. 1)
        # False: w_i sums the residual chunks before i (the paper; the Allen-Cahn code); True: the
        # weighted initial loss counts as a chunk before the first (the KS code)
        initial_in_weights: bool = False

        def __post_init__(self):
            if not self.epsilons or any(e <= 0 for e in self.epsilons):
                raise ValueError(f"epsilons must be a non-empty list of positive numbers, got {self.epsilons!r}")
            if not 0 < self.delta < 1:
                raise ValueError(f"delta must be in (0, 1), got {self.delta}")

    def fit(self, pde: base.PDE, setup: base.Setup) -> base.Fit:
        net = base.Net(setup.architecture, pde).to(setup.device, setup.dtype)
        window, trainer = base.Window(pde, setup), base.Trainer(net, setup)
        epsilons, delta = self.params.epsilons, self.params.delta
        state = {"epsilon": epsilons[0], "min_weight": 0.0, "frozen": None}

        def weights_of(terms) -> torch.Tensor:
            before = setup.initial_weight * terms.initial if self.params.initial_in_weights else 0.0
            return causal_weights(terms.residual, state["epsilon"], before)

        def loss():
            terms = window.terms(net)
            weights = weights_of(terms)
            state["min_weight"] = float(weights.min())
            used = weights if state["frozen"] is None else state["frozen"]
            logged = {**base.logged_terms(terms), "min_causal_weight": state["min_weight"], "epsilon": state["epsilon"]}
            return window.total(terms, (used * terms.residual).mean()), logged

        def resolved(logged=None) -> bool:
            if logged is None:  # between L-BFGS rounds: weights at the current parameters
                loss()
            return state["min_weight"] > delta

        for stage, epsilon in enumerate(epsilons):  # Algorithm 1 with Adam
            state["epsilon"] = epsilon
            trainer.adam(loss, (setup.iterations - trainer.iterations) // (len(epsilons) - stage), stop=resolved)
        # L-BFGS goes on from the last eps (or runs the whole schedule where there was no Adam),
        # in rounds with the weights frozen at each round's start: a line search needs one objective
        first, budget, used = (len(epsilons) - 1 if setup.iterations else 0), setup.lbfgs_iterations, 0
        for stage, epsilon in enumerate(epsilons[first:]):
            state["epsilon"], stage_budget = epsilon, (budget - used) // (len(epsilons) - first - stage)
            while stage_budget > 0 and not resolved():
                state["frozen"] = weights_of(window.terms(net))
                before = trainer.iterations
                trainer.lbfgs(loss, min(LBFGS_ROUND, stage_budget))
                state["frozen"], done = None, trainer.iterations - before
                stage_budget, used = stage_budget - max(done, 1), used + max(done, 1)
        resolved()
        metrics = {"min_causal_weight": state["min_weight"], "final_epsilon": state["epsilon"]}
        return base.Fit(predict=net, iterations=trainer.iterations, curves=trainer.curves, metrics=metrics)
