"""The contract the PINN protocol relies on, for every registered method: a new method file gets
these tests for free."""
import pytest
import torch
from pinn_tiny import pde, tiny_setup

from methods.registry import available, get

METHODS = available("pinn")


def _fit(name, equation="convection", seed=0, **setup):
    torch.manual_seed(seed)
    cls = get(name)
    return cls(cls.Params()).fit(pde(equation), tiny_setup(**setup))


def _grid():
    x = torch.linspace(0, 6.0, 7, dtype=torch.float64)[:, None].repeat(3, 1)
    t = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64).repeat_interleave(7)[:, None]
    return x, t


def test_the_papers_methods_are_registered_under_their_file_names():
    assert {"pinn/vanilla", "pinn/causal", "pinn/curriculum", "pinn/seq2seq", "pinn/lpinn"} <= set(METHODS)
    for name in METHODS:
        assert get(name).registry_name == name


@pytest.mark.parametrize("name", METHODS)
def test_method_contract(name):
    fit = _fit(name)
    x, t = _grid()
    with torch.no_grad():
        u = fit.predict(x, t)
    assert u.shape == (21, 1) and torch.isfinite(u).all()
    assert 0 < fit.iterations <= 6
    lengths = {len(v) for v in fit.curves.values()}
    assert len(lengths) == 1 and fit.curves["iteration"][-1] == fit.iterations
    assert {"loss", "loss_residual", "loss_initial", "loss_boundary"} <= set(fit.curves)
    refit = _fit(name)
    with torch.no_grad():
        again = refit.predict(x, t)
    assert torch.equal(u, again)  # same seed, same network


@pytest.mark.parametrize("name", METHODS)
def test_lbfgs_iterations_count_toward_the_budget(name):
    fit = _fit(name, iterations=2, lbfgs_iterations=3)
    assert 2 < fit.iterations <= 5


def test_methods_say_which_problems_they_do_not_apply_to():
    assert "velocity" in get("pinn/lpinn")().unsupported(pde("allen_cahn"))
    assert get("pinn/lpinn")().unsupported(pde("burgers")) == ""
    assert all(get(name)().unsupported(pde("convection")) == "" for name in METHODS)
