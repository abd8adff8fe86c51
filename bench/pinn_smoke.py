"""The PINN family's tables at one scale, from scratch, through the family contract, timed.

    python bench/pinn_smoke.py                       # both PINN cards at smoke: records, tables, plots
    python bench/pinn_smoke.py --scale tiny --results /tmp/pinn-tiny

A stand-in for `snakemake` until the engine runs plug-in families (entrobench/family.py): it
plans the cells and the reference builds from the cards, runs every build and every cell in a
fresh process (as the DAG's rules do, so import costs count), two at a time, writes the records
where the DAG would, renders each card's table with the engine's renderer and draws its plots.
Cells that two cards share (same config) run once. Writes bench/results/pinn_<scale>.json: the
wall time, the CPU time of the cell processes, and each cell's time.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from entrobench import card as card_module
from entrobench.protocols.pinn.family import FAMILY


def load_card(path: Path):
    """A PINN card, through the engine's loader. The loader of the engine this branch grew from
    reads a family from protocols/<name>/spec.py (the engine before the plug-in contract); it is
    then given FAMILY's view under the old names. Remove once the engine reads `FAMILY`."""
    try:
        return card_module.load_card(path)
    except card_module.CardError as err:
        if "unknown family 'pinn'" not in str(err):
            raise
    legacy = types.SimpleNamespace(Protocol=FAMILY.Protocol, Setting=FAMILY.Setting, DATASETS=FAMILY.datasets,
                                   METRICS=FAMILY.metrics, columns=FAMILY.columns)
    original = card_module._family_module
    card_module._family_module = lambda family, path: legacy if family == "pinn" else original(family, path)
    try:
        return card_module.load_card(path)
    finally:
        card_module._family_module = original


def plan(cards: list, scale: str, results: Path) -> tuple[dict, dict]:
    """Builds by folder and cells by record path (each once), over all cards."""
    from entrobench import cells

    builds, jobs = {}, {}
    for card in cards:
        scaled = card.scale(scale)
        FAMILY.check(scaled)
        for cell in cells.expand(scaled):
            if cell.shared:
                continue
            inputs = FAMILY.cell_builds(scaled, cell.dataset, scaled.setting(cell.setting), cell.seed)
            builds.update({_folder(results, b): b for b in inputs.values()})
            folders = {name: _folder(results, b) for name, b in inputs.items()}
            jobs.setdefault(str(cell.record_path(results)), {"card": str(card.path), "scale": scale, "cell": cell.key, "inputs": folders})
    return builds, jobs


def _folder(results: Path, build) -> str:
    """A build's folder: `Build.path` (results/_cache/...) under the results folder's parent."""
    return str(results.parent / build.path if results.name == "results" else results / build.path)


def run_build(folder: str, build, fresh: bool = True) -> float:
    if (Path(folder) / "build.json").is_file():
        return 0.0
    return _run_job({"build": {"make": build.make, "config": build.config}, "out": folder}, fresh)


def _run_job(job: dict, fresh: bool = True) -> float:
    """A build or a cell, in a fresh process (as the DAG runs it) or in this one (tests)."""
    start = time.time()
    if fresh:
        subprocess.run([sys.executable, __file__, "--job", json.dumps(job)], check=True, cwd=REPO)
    else:
        _do_build(job) if "build" in job else _do_cell(job)
    return time.time() - start


def run_all(cards: list, scale: str, results: Path, workers: int = 2, fresh: bool = True) -> dict:
    """Every build and cell of the cards that has no output yet, then each card's table and plots."""
    from entrobench import aggregate, tables

    builds, jobs = plan(cards, scale, results)
    with ThreadPoolExecutor(workers) as pool:
        build_s = dict(zip(builds, pool.map(lambda item: run_build(*item, fresh=fresh), builds.items())))
        todo = {path: job for path, job in jobs.items() if not Path(path).is_file()}
        cell_s = dict(zip(todo, pool.map(lambda item: _run_job({**item[1], "out": item[0]}, fresh), todo.items())))
    for card in cards:
        out = results / card.id / scale
        tables.render(card, scale, results, out)
        FAMILY.draw(card, scale, aggregate.load_records(card, scale, results), _mkdir(out / "plots"))
    return {"builds": build_s, "cells": cell_s}


def _do_build(job: dict) -> None:
    import importlib

    from entrobench.family import BuildRun
    from entrobench.progress import Progress

    out = Path(job["out"])
    out.mkdir(parents=True, exist_ok=True)
    module, function = job["build"]["make"].split(":")
    summary = getattr(importlib.import_module(module), function)(BuildRun(config=job["build"]["config"], inputs={}, out=out, data_root=None, progress=Progress("build")))
    (out / "build.json").write_text(json.dumps(summary) + "\n")


def _do_cell(job: dict) -> None:
    """One cell as the engine's run-cell does: config, run_cell, record (ok, skipped or failed)."""
    import traceback

    from entrobench import record
    from entrobench.cells import Cell, cell_config
    from entrobench.data.sources import default_data_root
    from entrobench.family import CellRun
    from entrobench.hashing import content_hash
    from entrobench.progress import Progress
    from methods import registry

    card = load_card(Path(job["card"]))
    scaled = card.scale(job["scale"])
    cell = Cell.from_key(card.id, job["scale"], job["cell"])
    config = cell_config(scaled, cell)
    out = Path(job["out"])
    run = CellRun(config=config, inputs={k: Path(v) for k, v in job["inputs"].items()}, data_root=default_data_root(),
                  method_cls=registry.get(config["method"]), progress=Progress(f"{card.id} {cell.key}", every_s=60),
                  dataset=FAMILY.datasets[cell.dataset], artifact_dir=out.with_name(out.stem + "-artifacts"))
    start = time.time()
    try:
        outcome = {"status": record.OK, **FAMILY.run_cell(run)}
    except record.Skip as err:
        outcome = {"status": record.SKIPPED, "reason": str(err), "metrics": {}, "curves": {}}
    except Exception as err:  # noqa: BLE001  (a failed cell is a result too, as in the engine)
        traceback.print_exc()
        outcome = {"status": record.FAILED, "reason": f"{type(err).__name__}: {err}", "metrics": {}, "curves": {}}
    record.write(out, {"card_version": card.spec.version, "family": "pinn", "scale": job["scale"], "dataset": cell.dataset,
                       "setting": cell.setting, "method_registry": config["method"], "seed": cell.seed, "config": config,
                       "config_hash": content_hash(config), **record.provenance(), **outcome,
                       "wall_s": time.time() - start, "peak_mem_mb": record.peak_mem_mb(), "cost": record.cost()})
    print(f"{card.id} {cell.key}: {outcome['status']} {outcome.get('reason', '')} {outcome['metrics'].get('rel_l2', '')}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="smoke")
    parser.add_argument("--cards", nargs="*", type=Path, default=sorted((REPO / "configs" / "pinn").glob("*.yaml")))
    parser.add_argument("--results", type=Path, default=REPO / "results")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--job", help=argparse.SUPPRESS)  # one build or cell, in this fresh process
    args = parser.parse_args(argv)
    if args.job:
        import torch

        torch.set_num_threads(1)
        job = json.loads(args.job)
        _do_build(job) if "build" in job else _do_cell(job)
        return 0

    start, cpu_start = time.time(), os.times()
    cards = [load_card(p) for p in args.cards]
    timings = run_all(cards, args.scale, args.results, args.workers)
    build_s, cell_s = timings["builds"], timings["cells"]
    for card in cards:
        print(f"{card.id}: {args.results / card.id / args.scale / 'table.md'}")
    cpu = os.times()
    figures = {"scale": args.scale, "cards": [c.id for c in cards], "wall_s": time.time() - start,
               "cpu_s_cells_and_builds": (cpu.children_user + cpu.children_system) - (cpu_start.children_user + cpu_start.children_system),
               "workers": args.workers, "builds_run": sum(1 for s in build_s.values() if s), "cells_run": len(cell_s),
               "cells": {str(Path(p).relative_to(args.results)): round(s, 2) for p, s in cell_s.items()},
               "builds_s": {Path(p).name: round(s, 2) for p, s in build_s.items() if s}}
    if args.results.resolve() == (REPO / "results").resolve():
        path = REPO / "bench" / "results" / f"pinn_{args.scale}.json"
        path.write_text(json.dumps({"command": f"python bench/pinn_smoke.py --scale {args.scale}", **figures}, indent=1) + "\n")
        print(f"wrote {path.relative_to(REPO)}")
    print(f"{len(cell_s)} cells, {figures['builds_run']} builds: {figures['wall_s']:.0f} s wall, {figures['cpu_s_cells_and_builds']:.0f} s CPU")
    return 0


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


if __name__ == "__main__":
    sys.exit(main())
