"""Both compression smoke tables through the family's own `run_cell`, without the DAG: wall time,
the numbers, and the claims judged on them.

    python bench/compression_smoke.py [--scale smoke] [--workers 2]   # -> bench/results/compression_<scale>.json

Until the engine's plug-in refactor lets `snakemake` run the compression cards, this is how
their smoke tables are produced. It reads the two cards in configs/compression/, builds each
distinct teacher once (`train.make_teacher`, as the DAG's build rule would), then runs every
cell (card x dataset x method x seed) in a pool of `--workers` processes of one thread each,
as Snakemake runs jobs on 2 cores. Cells the two cards share (none today) would run once.
A DAG run adds one process start per job on top of this; the JSON has that start time,
measured, so the DAG's wall time can be estimated beside the pool's.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from run import write  # noqa: E402 (bench/run.py, importable once bench/ is on the path)

CARDS = ("dkd_zhao2022", "sap_diao2023")


def resolve(card: str, scale: str) -> dict:
    """The card at one scale, as plain data: datasets, seeds, protocol, rows with their params."""
    spec = yaml.safe_load((REPO / "configs" / "compression" / f"{card}.yaml").read_text())
    over = spec.get("scales", {}).get(scale, {})
    rows = [m for m in spec["methods"] if not over.get("methods") or m["name"] in over["methods"]]
    return {
        "card": card, "datasets": over.get("datasets", spec["datasets"]), "seeds": over.get("seeds", spec["seeds"]),
        "protocol": {**spec.get("protocol", {}), **over.get("protocol", {})},
        "rows": [{"name": m["name"], "label": m.get("label", m["name"]), "method": m.get("method", f"compression/{m['name']}"),
                  "params": {**m.get("params", {}), **over.get("method_params", {}).get(m["name"], {})}} for m in rows],
        "claims": [c for c in spec.get("claims", []) if scale in c.get("scales", [scale])],
    }


def run_one(job: dict) -> dict:
    import torch

    from entrobench.family import CellRun
    from entrobench.progress import Progress
    from entrobench.protocols.compression.family import FAMILY
    from methods import registry

    torch.set_num_threads(1)
    cls = registry.get(job["method"])
    config = {"method": job["method"], "params": dataclasses.asdict(cls.Params(**job["params"])), "dataset": job["dataset"],
              "setting": {"name": job["setting"]}, "protocol": job["protocol"], "seed": job["seed"]}
    start, cpu = time.perf_counter(), time.process_time()
    out = FAMILY.run_cell(CellRun(config=config, inputs={"teacher": Path(job["teacher"])}, data_root=job["data_root"], method_cls=cls,
                                  progress=Progress(f"{job['row']}/seed{job['seed']}", 120)))
    return {**{k: job[k] for k in ("card", "dataset", "row", "seed")}, "wall_s": time.perf_counter() - start,
            "cpu_s": time.process_time() - cpu, "metrics": out["metrics"],
            "not_reached": out.get("not_reached", []), "reliability": out.get("reliability")}


def build_teachers(cards: list[dict], data_root, folder: Path) -> tuple[dict, float, float]:
    from entrobench.family import BuildRun
    from entrobench.progress import Progress
    from entrobench.protocols.compression.family import FAMILY, Protocol, teacher_build
    from entrobench.protocols.compression.train import make_teacher

    paths, start, cpu = {}, time.perf_counter(), time.process_time()
    for card in cards:
        for dataset in card["datasets"]:
            build = teacher_build(Protocol(**card["protocol"]), dataset, FAMILY.datasets[dataset])
            out = folder / Path(build.path).name
            if not out.exists():
                out.mkdir(parents=True)
                summary = make_teacher(BuildRun(config=build.config, inputs={}, out=out, data_root=data_root, progress=Progress("teacher", 30)))
                print(f"teacher {out.name}: top-1 {summary['test']['top1_pct']:.2f}%", flush=True)
            paths[card["card"], dataset] = str(out)
    return paths, time.perf_counter() - start, time.process_time() - cpu


def summarize(cards: list[dict], results: list[dict]) -> dict:
    import numpy as np

    from entrobench.aggregate import ci95
    from entrobench.claims import judge, parse_claim

    tables = {}
    for card in cards:
        for dataset in card["datasets"]:
            here = [r for r in results if r["card"] == card["card"] and r["dataset"] == dataset]
            table, per_seed = {}, {}
            for row in card["rows"]:
                mine = [r for r in here if r["row"] == row["name"]]
                keys = sorted({k for r in mine for k in r["metrics"]})
                table[row["name"]] = {k: {"mean": float(np.mean(v)), "ci95": ci95(v), "n": len(v)}
                                      for k in keys if (v := [r["metrics"][k] for r in mine if k in r["metrics"]])}
                for r in mine:
                    per_seed.setdefault(r["seed"], {}).update({(row["name"], k): v for k, v in r["metrics"].items()})
            means = {(m, k): s["mean"] for m, ks in table.items() for k, s in ks.items()}
            verdicts = []
            for claim in card["claims"]:
                parsed = parse_claim(claim["text"])
                verdict = judge(parsed, means)
                seeds = [judge(parsed, values).status for values in per_seed.values()]
                verdicts.append({"text": claim["text"], "status": verdict.status, "detail": verdict.detail,
                                 "holds_on_seeds": f"{seeds.count('holds')} of {len(seeds)}"})
            tables[f"{card['card']}/{dataset}"] = {"rows": table, "claims": verdicts}
    return tables


def process_start_s() -> float:
    """Wall time to start a Python process that imports what a compression cell imports."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch, entrobench.protocols.compression.run"], check=True, cwd=REPO)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="smoke")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from entrobench.data.sources import default_data_root

    data_root = default_data_root()
    cards = [resolve(c, args.scale) for c in CARDS]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        teachers, teacher_s, teacher_cpu = build_teachers(cards, data_root, Path(tmp))
        jobs = [{"card": c["card"], "dataset": d, "row": r["name"], "method": r["method"], "params": r["params"], "seed": s,
                 "setting": "distill" if c["card"] == CARDS[0] else "prune", "protocol": c["protocol"], "teacher": teachers[c["card"], d],
                 "data_root": data_root} for c in cards for d in c["datasets"] for r in c["rows"] for s in c["seeds"]]
        jobs.sort(key=lambda j: j["method"] not in ("compression/sap", "compression/imp", "compression/dml", "compression/bd_kd"))  # long jobs first
        with ProcessPoolExecutor(args.workers) as pool:
            results = list(pool.map(run_one, jobs))
    wall = time.perf_counter() - start
    startup = process_start_s()
    figures = {
        "scale": args.scale, "workers": args.workers, "threads_per_cell": 1, "cells": len(jobs),
        "wall_s": wall, "teacher_build_s": teacher_s, "cell_s_sum": sum(r["wall_s"] for r in results),
        "process_start_s": startup, "dag_estimate_s": wall + startup * (len(jobs) + 1) / args.workers,
        # CPU-seconds do not grow when other jobs share the cores: what the run costs on idle cores
        "teacher_cpu_s": teacher_cpu, "cell_cpu_s_sum": sum(r["cpu_s"] for r in results),
        "idle_estimate_s": teacher_cpu + sum(r["cpu_s"] for r in results) / args.workers + startup * (len(jobs) + 1) / args.workers,
        "protocols": {c["card"]: c["protocol"] for c in cards},
        "tables": summarize(cards, results),
        "cells_detail": [{k: r[k] for k in ("card", "dataset", "row", "seed", "wall_s", "cpu_s", "not_reached")} for r in results],
    }
    write(f"compression_{args.scale}", figures)
    for name, block in figures["tables"].items():
        print(f"\n== {name}")
        for row, metrics in block["rows"].items():
            print(f"{row:14s}", "  ".join(f"{k}={s['mean']:.3g}±{s['ci95']:.2g}" for k, s in metrics.items() if not k.startswith(("rounds", "sparsity", "dense_p"))))
        for v in block["claims"]:
            print(f"  [{v['status']}] {v['text']}: {v['detail']} (holds on {v['holds_on_seeds']} seeds)")
    print(json.dumps({k: round(figures[k], 1) for k in ("wall_s", "teacher_build_s", "cell_s_sum", "process_start_s", "dag_estimate_s",
                                                         "teacher_cpu_s", "cell_cpu_s_sum", "idle_estimate_s")}))


if __name__ == "__main__":
    main()
