"""Training steps per second of our PINN loop beside DeepXDE's (PyTorch backend), same problem,
network, points, loss and optimizer, side by side in one process.

    pip install -e .[bench]          # deepxde
    python bench/pinn_deepxde.py     # -> bench/results/pinn_deepxde.json and .png

The problem is DeepXDE's own Burgers example (examples/pinn_forward/Burgers.py): u_t + u u_x =
(0.01 / pi) u_xx on [-1, 1] x [0, 1], u0 = -sin(pi x), u(+-1) = 0; its network (2 -> 3 x 20 tanh
-> 1, Glorot normal) and point counts (2540 residual, 160 initial, 80 boundary points). Both
sides get the same points: ours as a fixed 20 x 127 grid of residual points, DeepXDE the same
points as `anchors`, and the initial and boundary points as `PointSetBC`s, so both minimize
    mean r^2 (residual points) + mean (u - u0)^2 (initial) + mean u^2 (boundary)
with Adam (lr 1e-3), float32, one thread. DeepXDE's `model.train` is timed as a user calls it
(display once, at the end); ours is `Trainer.adam` as the cells call it (curves every 1000 steps).
Rounds alternate between the two; the figures are medians over rounds, in steps per wall-second
and per CPU-second of the process (steadier when others share the machine). Not a test.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("DDE_BACKEND", "pytorch")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np
import torch

from entrobench.protocols.pinn.problems import make_pde
from methods.pinn.base import Architecture, Collocation, Net, Setup, Trainer, Window

NU = 0.01 / math.pi


def ours(setup: Setup, steps: int) -> float:
    """Adam steps per second of our loop on the vanilla PINN loss."""
    torch.manual_seed(0)
    pde = make_pde("burgers", {"nu": NU})
    net = Net(setup.architecture, pde)
    window, trainer = Window(pde, setup), Trainer(net, setup)

    def loss():
        terms = window.terms(net)
        return window.total(terms, terms.residual.mean()), {}

    trainer.adam(loss, 10)  # warm-up
    return _rates(lambda: trainer.adam(loss, steps), steps)


def _rates(run, steps: int) -> tuple[float, float]:
    """Steps per wall-second and per CPU-second of this process (the second is the steadier
    figure on a shared machine)."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return steps / (time.perf_counter() - wall), steps / (time.process_time() - cpu)


def points(setup: Setup) -> dict:
    """Our window's points as (x, t) arrays, for DeepXDE."""
    window = Window(make_pde("burgers", {"nu": NU}), setup)
    t, x = window.points()
    tt, xx = torch.meshgrid(t, x, indexing="ij")
    t_b = window.t_boundary[:, 0].numpy()
    return {
        "residual": np.stack([xx.reshape(-1).numpy(), tt.reshape(-1).numpy()], 1),
        "initial": np.stack([window.x_initial.numpy(), np.zeros(len(window.x_initial), np.float32)], 1),
        "initial_u": window.u_initial.numpy(),
        "boundary": np.concatenate([np.stack([np.full_like(t_b, -1.0), t_b], 1), np.stack([np.full_like(t_b, 1.0), t_b], 1)]),
    }


def deepxde_model(setup: Setup):
    import deepxde as dde

    dde.config.set_default_float("float32")
    dde.config.set_random_seed(0)
    p = points(setup)
    geomtime = dde.geometry.GeometryXTime(dde.geometry.Interval(-1, 1), dde.geometry.TimeDomain(0, 1))

    def pde(x, y):
        u_x, u_t = dde.grad.jacobian(y, x, i=0, j=0), dde.grad.jacobian(y, x, i=0, j=1)
        return u_t + y * u_x - NU * dde.grad.hessian(y, x, i=0, j=0)

    conditions = [dde.icbc.PointSetBC(p["initial"], p["initial_u"]), dde.icbc.PointSetBC(p["boundary"], np.zeros((len(p["boundary"]), 1), np.float32))]
    data = dde.data.TimePDE(geomtime, pde, conditions, num_domain=0, num_boundary=0, num_initial=0, anchors=p["residual"])
    arch = setup.architecture
    net = dde.nn.FNN([2] + [arch.width] * arch.depth + [1], "tanh", "Glorot normal")
    model = dde.Model(data, net)
    model.compile("adam", lr=setup.lr)
    return model, {name: len(v) for name, v in p.items() if name != "initial_u"}


def deepxde(model, steps: int) -> float:
    model.train(iterations=10, display_every=10, verbose=0)  # warm-up
    return _rates(lambda: model.train(iterations=steps, display_every=steps, verbose=0), steps)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500, help="Adam steps per round and side")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n-t", type=int, default=20)
    parser.add_argument("--n-x", type=int, default=127)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "pinn_deepxde.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    setup = Setup(architecture=Architecture(width=20, depth=3), collocation=Collocation(args.n_t, args.n_x, "grid"),
                  iterations=args.steps, lr=1e-3, lr_decay=1.0, n_initial=160, n_boundary=40, log_every=1000)
    model, counts = deepxde_model(setup)
    rates = {"ours": [], "deepxde": []}
    for _ in range(args.rounds):
        rates["ours"].append(ours(setup, args.steps))
        rates["deepxde"].append(deepxde(model, args.steps))
    median = {k: statistics.median(r[0] for r in v) for k, v in rates.items()}
    median_cpu = {k: statistics.median(r[1] for r in v) for k, v in rates.items()}
    import deepxde as dde

    figures = {
        "command": " ".join(["python bench/pinn_deepxde.py", *(sys.argv[1:] if argv is None else argv)]),
        "problem": "Burgers, nu = 0.01/pi (DeepXDE's example)", "network": "2 -> 3 x 20 tanh -> 1, Glorot normal",
        "points": counts, "optimizer": "Adam lr 1e-3, float32, 1 thread", "steps_per_round": args.steps,
        "steps_per_s": {k: round(v, 1) for k, v in median.items()}, "steps_per_cpu_s": {k: round(v, 1) for k, v in median_cpu.items()},
        "rounds_steps_per_s": {k: [round(r[0], 1) for r in v] for k, v in rates.items()},
        "rounds_steps_per_cpu_s": {k: [round(r[1], 1) for r in v] for k, v in rates.items()},
        "ours_over_deepxde": round(median["ours"] / median["deepxde"], 3),
        "ours_over_deepxde_cpu": round(median_cpu["ours"] / median_cpu["deepxde"], 3),
        "versions": {"deepxde": dde.__version__, "torch": torch.__version__}, "load_average": os.getloadavg(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=1) + "\n")
    _figure(figures, args.out.with_suffix(".png"))
    print(f"ours {median['ours']:.1f} steps/s ({median_cpu['ours']:.1f} per CPU-s), DeepXDE {median['deepxde']:.1f} "
          f"({median_cpu['deepxde']:.1f}): x{figures['ours_over_deepxde']:.2f} (x{figures['ours_over_deepxde_cpu']:.2f} per CPU-s) -> {args.out}")
    return 0


def _figure(figures: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(7, 3.2))
    names = ["ours", "deepxde"]
    for ax, key, label in zip(axes, ["steps_per_s", "steps_per_cpu_s"], ["Adam steps / wall-s", "Adam steps / CPU-s"]):
        ax.bar(["ours", "DeepXDE"], [figures[key][n] for n in names], color=["tab:blue", "tab:gray"])
        for i, n in enumerate(names):
            rounds = figures[f"rounds_{key}"][n]
            ax.plot([i] * len(rounds), rounds, "k.", ms=4)
        ax.set_ylabel(f"{label} (1 thread)")
    fig.suptitle(f"PINN training, same problem, network, points and loss (Burgers, {sum(figures['points'].values())} points)\n"
                 f"ours / DeepXDE: x{figures['ours_over_deepxde']:.2f} per wall-s, x{figures['ours_over_deepxde_cpu']:.2f} per CPU-s", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
