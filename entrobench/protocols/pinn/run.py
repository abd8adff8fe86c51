"""One PINN cell: build the PDE, train the method, measure it on the reference grid, draw it.

The protocol measures; the method (methods/pinn/*) trains. Metrics: the relative L2 error on the
reference grid (and against the published .mat solution where the data root has it), training
time, optimizer steps, and the method's own (causal training's final min weight). Curves: the
losses every `log_every` steps. Figure: reference, prediction and absolute error over (t, x).
"""
from __future__ import annotations

import time

import numpy as np
import torch

from entrobench.family import CellRun
from entrobench.protocols.pinn.problems import make_pde
from entrobench.protocols.pinn.reference import (
    load_reference,
    read_published,
    relative_l2,
)
from entrobench.record import Skip
from methods.pinn.base import Architecture, Collocation, Setup

PREDICT_BATCH = 65536  # grid points per forward pass when evaluating


def setup_from(protocol: dict, progress=None) -> Setup:
    """The methods' Setup from a cell's protocol (the family's Protocol, as a dict)."""
    p = protocol
    return Setup(
        architecture=Architecture(kind=p["network"], width=p["width"], depth=p["depth"], harmonics=p["harmonics"],
                                  fourier_features=p["fourier_features"], fourier_scale=p["fourier_scale"]),
        collocation=Collocation(n_t=p["n_t"], n_x=p["n_x"], mode=p["collocation"]),
        iterations=p["iterations"], lbfgs_iterations=p["lbfgs_iterations"],
        lr=p["lr"], lr_decay=p["lr_decay"], lr_decay_steps=p["lr_decay_steps"],
        n_initial=p["n_initial"], n_boundary=p["n_boundary"],
        initial_weight=p["initial_weight"], boundary_weight=p["boundary_weight"],
        log_every=p["log_every"], device=p["device"], dtype=getattr(torch, p["dtype"]), progress=progress,
    )


def predict_on_grid(predict, x: np.ndarray, t: np.ndarray, setup: Setup) -> np.ndarray:
    """u on the grid: (nt, nx) from a predictor of (N, 1) points."""
    tt, xx = np.meshgrid(t, x, indexing="ij")
    points = [torch.as_tensor(a.reshape(-1, 1), dtype=setup.dtype, device=setup.device) for a in (xx, tt)]
    with torch.no_grad():
        parts = [predict(points[0][i:i + PREDICT_BATCH], points[1][i:i + PREDICT_BATCH]) for i in range(0, len(points[0]), PREDICT_BATCH)]
    return torch.cat(parts).double().cpu().numpy().reshape(tt.shape)


def run_cell(run: CellRun, family) -> dict:
    config = run.config
    protocol, dataset = config["protocol"], config["dataset"]
    if protocol["device"] == "cuda" and not torch.cuda.is_available():
        raise Skip("the protocol trains on a GPU (device: cuda) and this node has none")
    coefficients = family.coefficients(dataset, config["setting"])
    pde = make_pde(family.datasets[dataset].equation, coefficients)
    method = run.method_cls(run.method_cls.Params(**config["params"]))
    reason = method.unsupported(pde)
    if reason:
        raise Skip(reason)
    x, t, u_ref = load_reference(run.inputs["reference"])

    torch.set_num_threads(max(1, run.threads))
    torch.manual_seed(config["seed"])
    np.random.seed(config["seed"])
    setup = setup_from(protocol, progress=run.progress.update if run.progress else None)
    start = time.perf_counter()
    fit = method.fit(pde, setup)
    if protocol["device"] == "cuda":
        torch.cuda.synchronize()
    train_s = time.perf_counter() - start
    u = predict_on_grid(fit.predict, x, t, setup)

    metrics = {"rel_l2": relative_l2(u, u_ref), "train_s": train_s, "iterations": fit.iterations, **fit.metrics}
    published = read_published(pde.name, run.data_root) if coefficients == family.coefficients(dataset, {"coefficients": {}}) else None
    if published is not None and np.allclose(published[0], x) and np.allclose(published[1], t):
        metrics["rel_l2_published"] = relative_l2(u, published[2])
    artifacts = []
    if run.artifact_dir is not None:
        from entrobench.protocols.pinn.plots import field_figure

        run.artifact_dir.mkdir(parents=True, exist_ok=True)
        title = f"{config['method']} on {dataset} ({', '.join(f'{k} {v:g}' for k, v in coefficients.items())}), seed {config['seed']}: rel. L2 {metrics['rel_l2']:.3g}"
        artifacts.append(field_figure(x, t, u_ref, u, title, run.artifact_dir / "field.png").name)
    if not np.isfinite(metrics["rel_l2"]):
        raise FloatingPointError(f"the prediction is not finite (rel_l2 {metrics['rel_l2']}): training diverged")
    return {"metrics": metrics, "curves": fit.curves, "artifacts": artifacts}
