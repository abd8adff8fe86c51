"""The toy family's work: draw the sample once (a build), estimate its mean (a cell)."""
from __future__ import annotations

import json

import numpy as np

from entrobench.family import BuildRun, CellRun


def draw(run: BuildRun) -> dict:
    rng = np.random.default_rng(0)
    n = run.config["n"]
    values = rng.normal(3.0, 1.0, n) if run.config["dataset"] == "normal" else rng.uniform(0.0, 6.0, n)
    (run.out / "sample.json").write_text(json.dumps(values.tolist()))
    return {"n": n}


def run_cell(run: CellRun) -> dict:
    values = np.array(json.loads((run.inputs["sample"] / "sample.json").read_text())) + run.config["setting"]["shift"]
    method = run.method_cls(run.method_cls.Params(**run.config["params"]))
    estimate = method.estimate(values, np.random.default_rng(run.config["seed"]))
    return {"metrics": {"estimate": estimate, "abs_error": abs(estimate - values.mean())}, "curves": {}}
