"""Krishnapriyan et al.'s fixes: the curriculum's schedule and the time-marching windows."""
import torch
from pinn_tiny import Exact, pde, tiny_setup

from methods.pinn.base import Architecture
from methods.pinn.curriculum import Curriculum
from methods.pinn.seq2seq import Piecewise, Seq2Seq


def test_curriculum_ramps_beta_from_one_to_the_target():
    assert Curriculum(Curriculum.Params(stages=5)).schedule(pde("convection", beta=50.0)) == [1.0, 13.25, 25.5, 37.75, 50.0]


def test_curriculum_trains_every_stage_on_its_own_coefficient():
    torch.manual_seed(0)
    fit = Curriculum(Curriculum.Params(stages=3)).fit(pde("convection", beta=9.0), tiny_setup(iterations=6, log_every=1))
    assert fit.curves["beta"] == [1.0, 1.0, 5.0, 5.0, 9.0, 9.0]


def test_piecewise_answers_each_time_with_its_window():
    nets = [Exact(lambda x, t, k=k: torch.full_like(x, float(k))) for k in range(4)]
    t = torch.tensor([[0.0], [0.24], [0.25], [0.6], [0.99], [1.0]])
    assert Piecewise(nets, 1.0)(torch.zeros_like(t), t)[:, 0].tolist() == [0, 0, 1, 2, 3, 3]


def test_seq2seq_marches_each_window_from_the_last_ones_end_state():
    torch.manual_seed(0)
    setup = tiny_setup(iterations=8, log_every=1, architecture=Architecture(width=8, depth=2, harmonics=2))
    fit = Seq2Seq(Seq2Seq.Params(windows=4)).fit(pde("convection", beta=5.0), setup)
    assert fit.curves["window"] == [0.0, 0.0, 0.25, 0.25, 0.5, 0.5, 0.75, 0.75]
    nets = fit.predict.nets
    x = torch.linspace(0, 6, 5, dtype=torch.float64)[:, None]
    with torch.no_grad():  # window 1 was trained to start where window 0 ends: the marched state is its target
        end_of_first = nets[0](x, torch.full_like(x, 0.25))
        start_of_second = nets[1](x, torch.full_like(x, 0.25))
    assert end_of_first.shape == start_of_second.shape == (5, 1)
    assert len(nets) == 4 and not any(p.requires_grad for p in nets.parameters())
