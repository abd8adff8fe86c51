"""Causal training: the weights of Wang, Sankaran & Perdikaris on fixed chunk losses, their
missing gradient, and Algorithm 1's stopping rule."""
import math

import pytest
import torch
from pinn_tiny import pde, tiny_setup

from methods.pinn.causal import Causal, causal_weights


def test_weights_are_exp_of_minus_eps_times_the_earlier_losses():
    losses = torch.tensor([0.5, 1.0, 2.0, 0.25])
    w = causal_weights(losses, epsilon=1.0)
    assert torch.allclose(w, torch.tensor([1.0, math.exp(-0.5), math.exp(-1.5), math.exp(-3.5)]))
    w10 = causal_weights(losses, epsilon=10.0, before=0.1)  # the KS code's initial loss before the first chunk
    assert torch.allclose(w10, torch.tensor([math.exp(-1.0), math.exp(-6.0), math.exp(-16.0), math.exp(-36.0)]))


def test_weights_carry_no_gradient():
    losses = torch.tensor([0.5, 1.0, 2.0], requires_grad=True)
    w = causal_weights(losses, epsilon=1.0, before=torch.tensor(0.2, requires_grad=True))
    assert not w.requires_grad
    (w * losses).sum().backward()
    assert torch.allclose(losses.grad, w)  # d/dL of sum w_i L_i with w held fixed


def test_each_stage_stops_once_every_weight_exceeds_delta():
    # delta tiny: every stage is resolved after its first step, so 5 eps values take 5 steps
    torch.manual_seed(0)
    fit = Causal(Causal.Params(delta=1e-300)).fit(pde("convection"), tiny_setup(iterations=50))
    assert fit.iterations == 5 and fit.metrics["final_epsilon"] == 100.0
    assert fit.curves["epsilon"][-1] == 100.0 and 0 < fit.metrics["min_causal_weight"] <= 1


def test_unresolved_training_spends_the_whole_budget_over_the_schedule():
    torch.manual_seed(0)
    fit = Causal(Causal.Params(epsilons=[1e3, 1e4])).fit(pde("convection", beta=50.0), tiny_setup(iterations=8, log_every=1))
    assert fit.iterations == 8 and fit.curves["epsilon"] == [1e3] * 4 + [1e4] * 4
    assert fit.metrics["min_causal_weight"] < 0.99


def test_lbfgs_alone_runs_the_schedule_in_rounds_with_the_weights_held():
    torch.manual_seed(0)
    fit = Causal(Causal.Params(epsilons=[1e3, 1e4])).fit(pde("convection", beta=50.0), tiny_setup(iterations=0, lbfgs_iterations=6, log_every=1))
    assert 0 < fit.iterations <= 6 and set(fit.curves["epsilon"]) == {1e3, 1e4}
    assert fit.metrics["final_epsilon"] == 1e4


@pytest.mark.parametrize("bad", [{"epsilons": []}, {"epsilons": [1.0, -1.0]}, {"delta": 1.0}])
def test_params_refuse_schedules_that_cannot_run(bad):
    with pytest.raises(ValueError):
        Causal.Params(**bad)
