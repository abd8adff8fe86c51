"""What every PINN method shares: the PDE as a method sees it, the networks, collocation points,
the residual, initial and boundary losses, and the optimizer loop.

A PINN (Raissi, Perdikaris & Karniadakis, J. Comput. Phys. 2019) is a network u(x, t) trained so
that the residual r = u_t + N[u] of a PDE vanishes at collocation points, with the initial
condition (and the boundary conditions the network does not satisfy by construction) as penalty
terms. The methods in this folder differ in how they weight and schedule those losses.

The contract, called by entrobench/protocols/pinn/run.py:
    method = Cls(Cls.Params(**card_params))
    fit = method.fit(pde, setup)     # trains; fit.predict(x, t) (N, 1) -> (N, 1), fit.curves, ...
`Cls.requires` names the PDE fields a method needs ("velocity", "curriculum"); a PDE without one
is not a problem the method applies to.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import torch
from torch import Tensor, nn


class Fields(NamedTuple):
    """u and the derivatives a residual reads, at the same points: each (N, 1)."""

    u: Tensor
    u_t: Tensor
    u_x: Tensor
    u_xx: Tensor | None


@dataclass(frozen=True)
class PDE:
    """u_t + N[u] = 0 for x in [x_lo, x_hi], t in [0, t_end], u(x, 0) = initial(x)."""

    name: str
    x_lo: float
    x_hi: float
    t_end: float
    periodic: bool  # periodic in x; otherwise u = 0 at both ends (Dirichlet)
    initial: Callable[[Tensor], Tensor]
    operator: Callable[[Fields, dict], Tensor]  # N[u] from the fields and the coefficients
    coefficients: dict
    second_order: bool  # N reads u_xx
    # transport form u_t + a(u) u_x = D u_xx (Lagrangian PINN): a(u, coefficients), and D's name
    velocity: Callable[[Tensor, dict], Tensor] | None = None
    diffusivity: str = ""
    # what curriculum regularization ramps: (coefficient, its easy value), e.g. ("beta", 1.0)
    curriculum: tuple[str, float] | None = None

    def residual(self, f: Fields, coefficients: dict | None = None) -> Tensor:
        return f.u_t + self.operator(f, self.coefficients if coefficients is None else coefficients)


def derivative(y: Tensor, x: Tensor) -> Tensor:
    """dy/dx pointwise (each y_i depends on x_i only), kept in the graph for the loss's backward;
    zeros where y does not depend on x (a linear field's second derivative)."""
    if not y.requires_grad:
        return torch.zeros_like(x)
    return torch.autograd.grad(y.sum(), x, create_graph=True, materialize_grads=True)[0]


def fields(net: nn.Module, x: Tensor, t: Tensor, second_order: bool) -> Fields:
    x, t = x.detach().requires_grad_(True), t.detach().requires_grad_(True)
    u = net(x, t)
    u_t, u_x = torch.autograd.grad(u.sum(), (t, x), create_graph=True, materialize_grads=True)
    return Fields(u, u_t, u_x, derivative(u_x, x) if second_order else None)


# --- networks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Architecture:
    kind: str = "mlp"  # "mlp" (Raissi et al.) or "modified_mlp" (Wang, Teng & Perdikaris, SISC 2021)
    width: int = 50
    depth: int = 4  # hidden layers
    # M > 0 on a periodic problem: x enters as cos(k w x), sin(k w x), k = 1..M, w = 2 pi / period,
    # beside t and 1, so every output is exactly periodic (the causal-PINN authors' Allen-Cahn code)
    harmonics: int = 0
    # m > 0: (x, t) also enters as cos(2 pi B z), sin(2 pi B z), B (2, m) ~ N(0, scale^2), fixed
    # at initialization (random Fourier features, Tancik et al. 2020; Wang et al. 2021)
    fourier_features: int = 0
    fourier_scale: float = 1.0

    def __post_init__(self):
        if self.kind not in ("mlp", "modified_mlp"):
            raise ValueError(f"architecture kind must be 'mlp' or 'modified_mlp', got {self.kind!r}")


class Embedding(nn.Module):
    def __init__(self, arch: Architecture, pde: PDE):
        super().__init__()
        self.exactly_periodic = pde.periodic and arch.harmonics > 0
        omega = 2 * math.pi / (pde.x_hi - pde.x_lo)
        self.register_buffer("k", omega * torch.arange(1, arch.harmonics + 1.0) if self.exactly_periodic else torch.zeros(0))
        self.register_buffer("B", arch.fourier_scale * torch.randn(2, arch.fourier_features))
        self.dim = (2 + 2 * arch.harmonics if self.exactly_periodic else 2) + 2 * arch.fourier_features

    def forward(self, x: Tensor, t: Tensor) -> Tensor:  # (N, 1), (N, 1) -> (N, dim)
        if self.exactly_periodic:
            parts = [t, torch.ones_like(t), torch.cos(self.k * x), torch.sin(self.k * x)]
        else:
            parts = [x, t]
        if self.B.shape[1]:
            z = 2 * math.pi * torch.cat([x, t], 1) @ self.B
            parts += [torch.cos(z), torch.sin(z)]
        return torch.cat(parts, 1)


def _glorot(n_in: int, n_out: int) -> nn.Linear:
    """Glorot-normal weights, zero biases: the initialization of both papers' code."""
    layer = nn.Linear(n_in, n_out)
    nn.init.xavier_normal_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class Net(nn.Module):
    """(x, t) -> `outputs` values. MLP: tanh hidden layers. Modified MLP: two encoders U, V of the
    input gate every hidden layer, H <- Z * U + (1 - Z) * V (Wang, Teng & Perdikaris 2021)."""

    def __init__(self, arch: Architecture, pde: PDE, outputs: int = 1):
        super().__init__()
        self.embed = Embedding(arch, pde)
        self.exactly_periodic = self.embed.exactly_periodic
        sizes = [self.embed.dim] + [arch.width] * arch.depth
        self.hidden = nn.ModuleList(_glorot(a, b) for a, b in itertools.pairwise(sizes))
        self.gates = nn.ModuleList([_glorot(self.embed.dim, arch.width), _glorot(self.embed.dim, arch.width)]) if arch.kind == "modified_mlp" else None
        self.out = _glorot(arch.width, outputs)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        h = z = self.embed(x, t)
        if self.gates is None:
            for layer in self.hidden:
                h = torch.tanh(layer(h))
        else:
            u, v = (torch.tanh(gate(z)) for gate in self.gates)
            for layer in self.hidden:
                a = torch.tanh(layer(h))
                h = a * u + (1 - a) * v
        return self.out(h)


# --- collocation and losses ----------------------------------------------------------------------


@dataclass(frozen=True)
class Collocation:
    """A tensor grid of n_t time levels x n_x positions. Each time level is one chunk of the
    causal loss. "grid": evenly spaced, fixed (the causal authors' Allen-Cahn code); "random":
    uniform points drawn once (Krishnapriyan et al.'s fixed N_f points); "resample": drawn anew
    every step (the causal authors' KS code)."""

    n_t: int = 32
    n_x: int = 64
    mode: str = "grid"

    def __post_init__(self):
        if self.mode not in ("grid", "random", "resample"):
            raise ValueError(f"collocation mode must be 'grid', 'random' or 'resample', got {self.mode!r}")


@dataclass
class Setup:
    """How a method trains: the same for every row of a table (the protocol)."""

    architecture: Architecture = field(default_factory=Architecture)
    collocation: Collocation = field(default_factory=Collocation)
    iterations: int = 1000  # Adam steps, all stages of a method together
    lbfgs_iterations: int = 0  # L-BFGS iterations after Adam, all stages together
    lr: float = 1e-3
    lr_decay: float = 0.9  # lr * lr_decay ** (step / lr_decay_steps), as optax's exponential_decay
    lr_decay_steps: int = 5000
    n_initial: int = 256  # evenly spaced points of the initial condition
    n_boundary: int = 100  # evenly spaced times of the boundary conditions
    initial_weight: float = 1.0
    boundary_weight: float = 1.0
    log_every: int = 100  # steps between points of the loss curves
    device: str = "cpu"
    dtype: torch.dtype = torch.float32
    progress: Callable[[int, int, str], None] | None = None  # (done, total, detail)


class Terms(NamedTuple):
    residual: Tensor  # (n_t,) mean squared residual at each time level
    initial: Tensor  # () mean squared error of the initial condition
    boundary: Tensor  # () mean squared boundary mismatch (0 where the network makes it exact)


class Window:
    """The PDE on t in [t0, t1] with its initial state and collocation points: what a loss reads."""

    def __init__(self, pde: PDE, setup: Setup, t0: float = 0.0, t1: float | None = None,
                 initial: Callable[[Tensor], Tensor] | None = None, coefficients: dict | None = None):
        self.pde, self.setup, self.t0 = pde, setup, t0
        self.t1 = pde.t_end if t1 is None else t1
        self.coefficients = pde.coefficients if coefficients is None else coefficients
        x = torch.linspace(pde.x_lo, pde.x_hi, setup.n_initial, dtype=setup.dtype, device=setup.device)
        self.x_initial = x[:-1] if pde.periodic else x  # the periodic end point is the start point
        with torch.no_grad():
            self.u_initial = (initial or pde.initial)(self.x_initial[:, None])
        self.t_boundary = torch.linspace(t0, self.t1, setup.n_boundary, dtype=setup.dtype, device=setup.device)[:, None]
        self.t_initial = torch.full_like(self.x_initial[:, None], t0)
        self._fixed = None if setup.collocation.mode == "resample" else self._draw()
        self._fixed_grid = None if self._fixed is None else _grid(*self._fixed)  # made once: fixed points

    def _draw(self) -> tuple[Tensor, Tensor]:
        c, s = self.setup.collocation, self.setup
        if c.mode == "grid":
            return (torch.linspace(self.t0, self.t1, c.n_t, dtype=s.dtype, device=s.device),
                    torch.linspace(self.pde.x_lo, self.pde.x_hi, c.n_x, dtype=s.dtype, device=s.device))
        t = self.t0 + (self.t1 - self.t0) * torch.rand(c.n_t, dtype=s.dtype, device=s.device).sort().values
        return t, self.pde.x_lo + (self.pde.x_hi - self.pde.x_lo) * torch.rand(c.n_x, dtype=s.dtype, device=s.device)

    def points(self) -> tuple[Tensor, Tensor]:
        """Collocation times (n_t,), increasing, and positions (n_x,)."""
        return self._fixed if self._fixed is not None else self._draw()

    def terms(self, net: nn.Module) -> Terms:
        t, x = self.points()
        tt, xx = self._fixed_grid if self._fixed is not None else _grid(t, x)
        r = self.pde.residual(fields(net, xx, tt, self.pde.second_order), self.coefficients)
        initial = (net(self.x_initial[:, None], self.t_initial) - self.u_initial).pow(2).mean()
        return Terms(r.reshape(len(t), len(x)).pow(2).mean(1), initial, self.boundary(net))

    def boundary(self, net: nn.Module) -> Tensor:
        if getattr(net, "exactly_periodic", False):
            return torch.zeros((), dtype=self.setup.dtype, device=self.setup.device)
        t = self.t_boundary
        lo, hi = torch.full_like(t, self.pde.x_lo), torch.full_like(t, self.pde.x_hi)
        if not self.pde.periodic:  # u = 0 at both ends
            return (net(lo, t).pow(2) + net(hi, t).pow(2)).mean()
        if not self.pde.second_order:
            return (net(lo, t) - net(hi, t)).pow(2).mean()
        a, b = fields(net, lo, t, False), fields(net, hi, t, False)  # second order: u_x matches too
        return (a.u - b.u).pow(2).mean() + (a.u_x - b.u_x).pow(2).mean()

    def total(self, terms: Terms, residual: Tensor) -> Tensor:
        """The loss: a residual term (the methods' business) plus the weighted penalties."""
        return residual + self.setup.initial_weight * terms.initial + self.setup.boundary_weight * terms.boundary


def _grid(t: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    """All (t_i, x_j) pairs, time-major, as columns (n_t * n_x, 1): row i of a reshape is time i."""
    return tuple(g.reshape(-1, 1) for g in torch.meshgrid(t, x, indexing="ij"))


# --- training ------------------------------------------------------------------------------------


class Trainer:
    """Adam with exponential learning-rate decay, then (optionally) L-BFGS, on one network. One
    trainer per network, kept across a method's stages, so the decay runs on the global step
    count as in the authors' code. Loss curves are kept every `log_every` steps."""

    def __init__(self, net: nn.Module, setup: Setup):
        self.net, self.setup = net, setup
        self.adam_optimizer = torch.optim.Adam(net.parameters(), lr=setup.lr)
        self.iterations = 0
        self.curves: dict[str, list[float]] = {}
        self._total = setup.iterations + setup.lbfgs_iterations

    def adam(self, loss_fn: Callable[[], tuple[Tensor, dict]], steps: int, stop: Callable[[dict], bool] | None = None) -> None:
        """loss_fn() -> (loss, {name: value to log}); stop(logged) -> True ends the stage early."""
        s, loss, logged = self.setup, None, {}
        for _ in range(steps):
            for group in self.adam_optimizer.param_groups:
                group["lr"] = s.lr * s.lr_decay ** (self.iterations / s.lr_decay_steps)
            loss, logged = loss_fn()
            self.adam_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.adam_optimizer.step()
            self._count(loss, logged)
            if stop is not None and stop(logged):
                break
        self._log_last(loss, logged)

    def lbfgs(self, loss_fn: Callable[[], tuple[Tensor, dict]], steps: int) -> None:
        """L-BFGS as Krishnapriyan et al. run it: lr 1, history 50, strong-Wolfe line search,
        tolerances 1e-7 on the gradient and on changes (it may stop before `steps`)."""
        if steps <= 0:
            return
        opt = torch.optim.LBFGS(self.net.parameters(), lr=1.0, max_iter=steps, history_size=50,
                                tolerance_grad=1e-7, tolerance_change=1e-7, line_search_fn="strong_wolfe")
        first, counted, last = next(self.net.parameters()), 0, {}

        def closure():  # called once per function evaluation; curves count iterations
            nonlocal counted
            opt.zero_grad(set_to_none=True)
            loss, logged = loss_fn()
            loss.backward()
            last.update(loss=loss, logged=logged)
            for _ in range(opt.state[first].get("n_iter", 0) - counted):
                self._count(loss, logged)
                counted += 1
            return loss

        opt.step(closure)
        for _ in range(opt.state[first].get("n_iter", 0) - counted):
            self._count(last["loss"], last["logged"])
        self._log_last(last.get("loss"), last.get("logged", {}))

    def _count(self, loss: Tensor, logged: dict) -> None:
        self.iterations += 1
        if self.iterations % self.setup.log_every == 0 or self.iterations == 1:
            self._log(loss, logged)

    def _log_last(self, loss: Tensor | None, logged: dict) -> None:
        """The end of a phase is always on the curves (it is where a stage hands over)."""
        if loss is not None and self.curves.get("iteration", [None])[-1] != self.iterations:
            self._log(loss, logged)

    def _log(self, loss: Tensor, logged: dict) -> None:
        self.curves.setdefault("iteration", []).append(self.iterations)
        for name, value in {"loss": loss, **logged}.items():
            self.curves.setdefault(name, []).append(float(value.detach()) if torch.is_tensor(value) else float(value))
        if self.setup.progress:
            self.setup.progress(self.iterations, self._total, f"loss {float(loss.detach()):.3e}")


def logged_terms(terms: Terms) -> dict:
    return {"loss_residual": terms.residual.detach().mean(), "loss_initial": terms.initial.detach(), "loss_boundary": terms.boundary.detach()}


def shares(total: int, parts: int) -> list[int]:
    """`total` steps split as evenly as possible over `parts` stages."""
    return [total // parts + (i < total % parts) for i in range(parts)]


@dataclass
class Fit:
    predict: Callable[[Tensor, Tensor], Tensor]  # (N, 1), (N, 1) -> (N, 1); call under no_grad
    iterations: int  # optimizer steps taken (Adam steps + L-BFGS iterations)
    curves: dict[str, list[float]]
    metrics: dict[str, float] = field(default_factory=dict)  # method-specific, e.g. min_causal_weight


class PINNMethod:
    requires: ClassVar[tuple[str, ...]] = ()  # PDE fields the method needs, e.g. ("velocity",)

    @dataclass(frozen=True)
    class Params:
        pass

    def __init__(self, params=None):
        self.params = params if params is not None else self.Params()

    def unsupported(self, pde: PDE) -> str:
        """Why the method does not apply to `pde`, or "" where it does."""
        missing = [name for name in self.requires if getattr(pde, name) is None]
        return f"{type(self).__name__} needs the PDE's {', '.join(missing)}; {pde.name} has none" if missing else ""

    def fit(self, pde: PDE, setup: Setup) -> Fit:
        raise NotImplementedError
