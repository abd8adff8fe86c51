"""Physics-informed neural networks: vanilla PINNs against the fixes papers propose for their
failure modes, on PDEs with trusted reference solutions.

A cell trains one method (methods/pinn/*) on one equation (a dataset: problems.py) with one set
of coefficients (a setting, e.g. beta = 50) and one seed, and measures the relative L2 error of
the trained network on the reference grid. The reference (reference.py: exact, or ETDRK4) is a
cached build shared by every method, seed and card. Light imports only: the DAG reads this file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from entrobench.family import Build, CellRun, Family
from entrobench.metrics import Metric

HERE = Path(__file__).resolve().parent
DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class Protocol:
    """How every method of a table trains: network, collocation points, optimizer, budget."""

    iterations: int = 300_000  # Adam steps per cell, all of a method's stages together
    lbfgs_iterations: int = 0  # L-BFGS iterations after Adam (Raissi et al.; Krishnapriyan et al. use L-BFGS only)
    lr: float = 1e-3
    lr_decay: float = 0.9  # lr * lr_decay ** (step / lr_decay_steps): the causal-PINN code's schedule
    lr_decay_steps: int = 5000
    collocation: str = "grid"  # "grid" (fixed, evenly spaced), "random" (drawn once) or "resample" (every step)
    n_t: int = 100  # collocation times per step: the causal chunks
    n_x: int = 256  # collocation positions per time
    n_initial: int = 256  # initial-condition points
    n_boundary: int = 100  # boundary-condition times (unused where the network is exactly periodic)
    initial_weight: float = 1.0  # lambda_0 of the initial-condition loss
    boundary_weight: float = 1.0
    network: str = "mlp"  # "mlp" or "modified_mlp"
    width: int = 128
    depth: int = 4  # hidden layers
    harmonics: int = 10  # periodic problems: x enters as cos/sin of k = 1..harmonics (exact periodicity); 0: raw x
    fourier_features: int = 0  # random Fourier features of (x, t); 0: none
    fourier_scale: float = 1.0
    log_every: int = 100  # steps between points of the loss curves
    device: str = "cpu"  # "cpu" or "cuda"
    dtype: str = "float32"

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {self.device!r}")
        if self.collocation not in ("grid", "random", "resample"):
            raise ValueError(f"collocation must be 'grid', 'random' or 'resample', got {self.collocation!r}")
        if self.network not in ("mlp", "modified_mlp"):
            raise ValueError(f"network must be 'mlp' or 'modified_mlp', got {self.network!r}")
        if min(self.n_t, self.n_x, self.n_initial, self.n_boundary, self.width, self.depth, self.log_every) < 1:
            raise ValueError("n_t, n_x, n_initial, n_boundary, width, depth and log_every must be >= 1")


@dataclass(frozen=True)
class Setting:
    name: str
    coefficients: dict = field(default_factory=dict)  # the equation's coefficients this block changes, e.g. {beta: 50}


@dataclass(frozen=True)
class Problem:
    equation: str  # a name in problems.EQUATIONS
    description: str
    needs_data_root: bool = False  # the reference is computed here; the published .mat is an extra check


class PINNFamily(Family):
    name = "pinn"
    warm_imports = ("entrobench.protocols.pinn.run",)
    Protocol = Protocol
    Setting = Setting
    datasets: ClassVar[dict[str, Problem]] = {
        "convection": Problem("convection", "u_t + beta u_x = 0 on [0, 2 pi) x [0, 1], u0 = sin x, periodic; exact solution"),
        "allen_cahn": Problem("allen_cahn", "u_t - 1e-4 u_xx + 5 u^3 - 5 u = 0 on [-1, 1] x [0, 1], u0 = x^2 cos(pi x), periodic; ETDRK4 reference, AC.mat beside it"),
        "burgers": Problem("burgers", "u_t + u u_x = (0.01 / pi) u_xx on [-1, 1] x [0, 1], u0 = -sin(pi x), u(+-1) = 0; ETDRK4 reference, burgers_shock.mat beside it"),
    }
    metrics: ClassVar[dict[str, Metric]] = {
        "rel_l2": Metric("fraction", "lower", "||u - u_ref|| / ||u_ref|| over the reference grid (exact solution, or our ETDRK4 solution)"),
        "rel_l2_published": Metric("fraction", "lower", "the same against Raissi's published solution (AC.mat, burgers_shock.mat), where the data root has it"),
        "train_s": Metric("s", "lower", "wall time of training (the method's fit); evaluation and plots excluded"),
        "iterations": Metric("steps", "", "optimizer steps taken: Adam steps plus L-BFGS iterations (causal training may stop early)"),
        "min_causal_weight": Metric("weight", "higher", "causal training: min_i w_i at the end, the paper's convergence indicator (> 0.99: every time resolved at the last eps)"),
        "final_epsilon": Metric("eps", "", "causal training: the last causality parameter of the schedule trained"),
    }

    def check(self, scaled) -> None:
        from entrobench.protocols.pinn.problems import EQUATIONS

        for dataset in scaled.datasets:
            known = EQUATIONS[self.datasets[dataset].equation].coefficients
            for setting in scaled.settings:
                unknown = [k for k in setting.coefficients if k not in known]
                if unknown:
                    raise ValueError(f"settings.{setting.name}.coefficients.{unknown[0]}: {dataset} has no such coefficient (it has: {', '.join(known)})")

    def coefficients(self, dataset: str, setting) -> dict:
        from entrobench.protocols.pinn.problems import EQUATIONS

        coefficients = setting.coefficients if isinstance(setting, Setting) else setting["coefficients"]
        return {**EQUATIONS[self.datasets[dataset].equation].coefficients, **{k: float(v) for k, v in coefficients.items()}}

    def cell_builds(self, scaled, dataset: str, setting, seed: int) -> dict[str, Build]:
        from entrobench.protocols.pinn.reference import reference_config

        problem = self.datasets[dataset]
        coefficients = self.coefficients(dataset, setting)
        name = "-".join([problem.equation] + [f"{k}{v:g}" for k, v in sorted(coefficients.items())])
        return {"reference": Build(
            owner=self.name, kind="reference", name=name, make="entrobench.protocols.pinn.reference:make_reference",
            config=reference_config(problem.equation, coefficients),
            sources=(str(HERE / "reference.py"), str(HERE / "problems.py")),
        )}

    def cell_sources(self, scaled, dataset: str, setting) -> list[Path]:
        return [HERE / "run.py", HERE / "problems.py", HERE / "reference.py", HERE / "plots.py"]

    def run_cell(self, run: CellRun) -> dict:
        from entrobench.protocols.pinn.run import run_cell

        return run_cell(run, self)

    def draw(self, card, scale: str, records: list[dict], out_dir: Path) -> list[Path]:
        from entrobench.protocols.pinn.plots import draw

        return draw(card, scale, records, out_dir)


FAMILY = PINNFamily()
