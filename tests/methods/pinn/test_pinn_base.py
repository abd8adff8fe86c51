"""The shared PINN pieces on exact solutions and fixed tensors: residuals, losses, networks,
collocation, the optimizer loop."""
import math

import pytest
import torch
from pinn_tiny import Exact, burgers_front, pde, tiny_setup, uniform_allen_cahn

from methods.pinn.base import (
    Architecture,
    Collocation,
    Net,
    Trainer,
    Window,
    fields,
    shares,
)


def test_exact_convection_solution_has_zero_residual_and_losses():
    beta = 30.0
    convection = pde("convection", beta=beta)
    window = Window(convection, tiny_setup(collocation=Collocation(n_t=7, n_x=11, mode="random")))
    terms = window.terms(Exact(lambda x, t: torch.sin(x - beta * t)))
    assert terms.residual.shape == (7,)
    assert terms.residual.max() < 1e-24  # float64: u_t + beta u_x = -beta cos + beta cos
    assert terms.initial < 1e-30 and terms.boundary < 1e-24


def test_a_wrong_field_has_the_residual_worked_out_by_hand():
    convection = pde("convection", beta=2.0)
    x, t = torch.tensor([[0.3], [1.1]], dtype=torch.float64), torch.tensor([[0.2], [0.7]], dtype=torch.float64)
    f = fields(Exact(lambda x, t: x * t), x, t, second_order=False)  # u_t = x, u_x = t: r = x + 2 t
    assert torch.allclose(convection.residual(f), x + 2 * t)


@pytest.mark.parametrize("equation,solution", [
    ("allen_cahn", uniform_allen_cahn(0.3, 5.0)),
    ("burgers", burgers_front(0.01 / math.pi)),
])
def test_second_order_residuals_vanish_on_exact_solutions(equation, solution):
    window = Window(pde(equation), tiny_setup(collocation=Collocation(n_t=5, n_x=9)))
    residual = window.terms(Exact(solution)).residual
    assert residual.max() < 1e-18


def test_harmonic_embedding_makes_the_network_exactly_periodic():
    convection = pde("convection")
    torch.manual_seed(0)
    net = Net(Architecture(width=8, depth=2, harmonics=3), convection).double()
    t = torch.rand(5, 1, dtype=torch.float64)
    assert torch.allclose(net(torch.zeros_like(t), t), net(torch.full_like(t, 2 * math.pi), t), atol=1e-12)
    assert Window(convection, tiny_setup()).boundary(net) == 0


def test_modified_mlp_gates_every_hidden_layer_and_differs_from_the_mlp():
    torch.manual_seed(0)
    burgers = pde("burgers")
    plain, gated = Net(Architecture(width=6, depth=3), burgers), Net(Architecture(kind="modified_mlp", width=6, depth=3), burgers)
    assert len(gated.gates) == 2 and plain.gates is None
    x, t = torch.rand(4, 1), torch.rand(4, 1)
    assert gated(x, t).shape == (4, 1) and plain(x, t).shape == (4, 1)


def test_fourier_features_add_two_columns_per_feature():
    net = Net(Architecture(width=4, depth=1, fourier_features=5, fourier_scale=2.0), pde("burgers"))
    assert net.embed.dim == 2 + 10 and net.embed.B.shape == (2, 5)


def test_collocation_grid_is_fixed_and_resampling_draws_anew():
    burgers = pde("burgers")
    grid = Window(burgers, tiny_setup(collocation=Collocation(n_t=3, n_x=4, mode="grid")))
    t, x = grid.points()
    assert torch.allclose(t, torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)) and x[0] == -1 and x[-1] == 1
    fresh = Window(burgers, tiny_setup(collocation=Collocation(n_t=3, n_x=4, mode="resample")))
    (t1, x1), (_, x2) = fresh.points(), fresh.points()
    assert not torch.equal(x1, x2) and bool((t1[1:] >= t1[:-1]).all())


def test_window_starts_from_its_own_initial_state():
    window = Window(pde("convection"), tiny_setup(), t0=0.4, t1=0.6, initial=lambda x: 2 * x)
    assert torch.allclose(window.u_initial, 2 * window.x_initial[:, None])
    assert window.x_initial[-1] < 2 * math.pi  # the periodic end point is the start point, not a second one


def test_dirichlet_boundary_loss_is_the_squared_end_values():
    window = Window(pde("burgers"), tiny_setup())
    assert torch.isclose(window.boundary(Exact(lambda x, t: 0 * x + 3.0)), torch.tensor(18.0, dtype=torch.float64))


def test_shares_split_a_budget_without_losing_steps():
    assert shares(10, 3) == [4, 3, 3] and shares(2, 4) == [1, 1, 0, 0] and sum(shares(300_000, 7)) == 300_000


def test_trainer_decays_the_learning_rate_and_logs_every_n_steps():
    torch.manual_seed(0)
    setup = tiny_setup(lr=1e-2, lr_decay=0.5, lr_decay_steps=2, log_every=2)
    net = Net(setup.architecture, pde("convection")).double()
    window, trainer = Window(pde("convection"), setup), Trainer(net, setup)
    trainer.adam(lambda: (window.total(terms := window.terms(net), terms.residual.mean()), {}), 5)
    assert trainer.adam_optimizer.param_groups[0]["lr"] == pytest.approx(1e-2 * 0.5 ** (4 / 2))
    assert trainer.iterations == 5 and trainer.curves["iteration"] == [1, 2, 4, 5]
    trainer.lbfgs(lambda: (window.total(terms := window.terms(net), terms.residual.mean()), {}), 3)
    assert 5 < trainer.iterations <= 8
