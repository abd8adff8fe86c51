"""The PINN cards' full-scale protocols on a GPU, briefly: every row runs, on the device, at what
speed, and how long a full-scale cell would take (for the cards' `resources.runtime`).

    python bench/pinn_gpu_check.py                    # on a GPU node: -> bench/results/pinn_gpu.json
    python bench/pinn_gpu_check.py --device cpu --steps 3 --tiny   # the same code path on CPU

For each card: its `full` protocol with the optimizer budget cut to --steps (Adam steps where the
card uses Adam, L-BFGS iterations where it uses L-BFGS), one seed, each row on the card's first
dataset and last setting (Allen-Cahn; convection at beta = 50), through the family's run_cell.
Reports steps per second, the full budget divided by it (hours per cell), the relative L2 error
after the short run (not a result), and the device the cell trained on. Well under 3 minutes on
one GPU at the default --steps.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from entrobench.card import load_card
from entrobench.family import BuildRun, CellRun
from entrobench.progress import Progress
from entrobench.protocols.pinn.family import FAMILY
from methods import registry

TINY = {"n_t": 4, "n_x": 8, "n_initial": 17, "width": 8, "depth": 2}  # --tiny: the code path only


def check_card(path: Path, steps: int, device: str, tiny: bool, cache: Path) -> list[dict]:
    card = load_card(path)
    scaled = card.scale("full")
    full = dataclasses.asdict(scaled.protocol)
    uses_adam = full["iterations"] > 0
    protocol = {**full, "device": device, "iterations": steps if uses_adam else 0, "lbfgs_iterations": 0 if uses_adam else steps,
                **(TINY if tiny else {})}
    budget = full["iterations"] if uses_adam else full["lbfgs_iterations"]
    dataset, setting = scaled.datasets[0], scaled.settings[-1]
    build = FAMILY.cell_builds(scaled, dataset, setting, 0)["reference"]
    folder = cache / build.path
    if not (folder / "reference.npz").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        module, function = build.make.split(":")
        getattr(__import__(module, fromlist=[function]), function)(BuildRun(config=build.config, inputs={}, out=folder, data_root=None, progress=Progress("build")))
    rows = []
    for k, entry in enumerate([scaled.methods[0], *scaled.methods]):  # the first run warms up (CUDA context, kernels)
        name, params = scaled.method_params(entry.name)
        config = {"method": name, "params": dataclasses.asdict(params), "dataset": dataset, "setting": dataclasses.asdict(setting),
                  "protocol": protocol, "seed": 0}
        run = CellRun(config=config, inputs={"reference": folder}, data_root=None, method_cls=registry.get(name), progress=Progress(entry.name, every_s=30))
        start = time.time()
        try:
            result = FAMILY.run_cell(run)
            if k == 0:
                continue
        except Exception as err:  # noqa: BLE001  (a row that cannot run is a finding of the check)
            rows.append({"card": card.id, "row": entry.name, "dataset": dataset, "setting": setting.name, "status": f"{type(err).__name__}: {err}"})
            continue
        m = result["metrics"]
        rate = m["iterations"] / m["train_s"]
        rows.append({"card": card.id, "row": entry.name, "dataset": dataset, "setting": setting.name, "status": "ok", "device": device,
                     "steps": m["iterations"], "steps_per_s": round(rate, 2), "full_budget": budget,
                     "full_cell_h": round(budget / rate / 3600, 2), "rel_l2_after_short_run": round(m["rel_l2"], 4), "cell_s": round(time.time() - start, 1)})
        print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--tiny", action="store_true", help="tiny networks and points: checks the code path on CPU")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "pinn_gpu.json")
    args = parser.parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no GPU here: run with --device cpu --tiny to check the code path", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as cache:
        rows = [row for path in sorted((REPO / "configs" / "pinn").glob("*.yaml")) for row in check_card(path, args.steps, args.device, args.tiny, Path(cache))]
    figures = {"command": " ".join(["python bench/pinn_gpu_check.py", *(sys.argv[1:] if argv is None else argv)]),
               "device_name": torch.cuda.get_device_name() if args.device == "cuda" else "cpu", "torch": torch.__version__, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(r["status"] == "ok" or "needs the PDE" in r["status"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
