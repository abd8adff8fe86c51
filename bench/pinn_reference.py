"""Our reference solutions beside Raissi's published ones: agreement and solve time.

    python bench/pinn_reference.py    # -> bench/results/pinn_reference.json, pinn_reference_<equation>.png

For Allen-Cahn (AC.mat: Chebfun, 512 Fourier modes) and Burgers (burgers_shock.mat), on the
published grids: relative L2 and max absolute difference of our ETDRK4 solution, with the
production settings (problems.py) and with twice the modes and half the time step (how far our
own solution is from converged). The figure: published, ours, |ours - published| over (t, x).
Needs the data root ($ENTROBENCH_DATA_ROOT or ../shared/data); equations without their file
are listed as skipped.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np

from entrobench.data.sources import default_data_root
from entrobench.protocols.pinn.plots import field_figure
from entrobench.protocols.pinn.problems import EQUATIONS
from entrobench.protocols.pinn.reference import read_published, relative_l2, solve

OUT = REPO / "bench" / "results"


def compare(equation: str, root: Path | None) -> dict:
    published = read_published(equation, root)
    if published is None:
        return {"skipped": f"{EQUATIONS[equation].data_file} not under the data root ({root})"}
    settings = EQUATIONS[equation].solver
    start = time.process_time()
    x, t, u = solve(equation, EQUATIONS[equation].coefficients, **settings)
    solve_s = time.process_time() - start
    finer = {"modes": 2 * settings["modes"], "dt": settings["dt"] / 2}
    _, _, u_fine = solve(equation, EQUATIONS[equation].coefficients, **finer)
    title = f"{equation}: our ETDRK4 ({settings['modes']} modes, dt {settings['dt']:g}) against {EQUATIONS[equation].data_file}: relative L2 {relative_l2(u, published[2]):.2e}"
    field_figure(x, t, published[2], u, title, OUT / f"pinn_reference_{equation}.png", names=("published (.mat)", "ours (ETDRK4)"), log_error=True)
    return {"settings": settings, "solve_cpu_s": round(solve_s, 2), "grid": [len(t), len(x)],
            "rel_l2_vs_published": relative_l2(u, published[2]), "max_abs_vs_published": float(np.abs(u - published[2]).max()),
            "rel_l2_vs_finer": relative_l2(u, u_fine), "finer": finer,
            "figure": f"bench/results/pinn_reference_{equation}.png"}


def main() -> int:
    root = default_data_root()
    figures = {"command": "python bench/pinn_reference.py", "data_root": str(root), **{eq: compare(eq, root) for eq in ("allen_cahn", "burgers")}}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "pinn_reference.json").write_text(json.dumps(figures, indent=1) + "\n")
    for eq in ("allen_cahn", "burgers"):
        print(eq, {k: v for k, v in figures[eq].items() if k in ("rel_l2_vs_published", "max_abs_vs_published", "rel_l2_vs_finer", "skipped")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
