"""Helpers for the MLflow fault tests: a 30-cell card with synthetic records, writer processes
that import them into one store ("separate checkouts": each has its own results folder), and an
audit of what the store holds afterwards.

A helper module imported by name, not a conftest.py (test modules are imported without packages)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from entrobench import aggregate, record, tracking
from entrobench.card import Card, load_card
from entrobench.cells import cell_config, expand

REPO = Path(__file__).resolve().parents[2]
SCALE = "tiny"
# 3 methods x 1 setting x 10 seeds = 30 cells, the size of the measurement (30 runs)
CARD = {
    "version": 1, "title": "Store faults", "arxiv": "0000.00000", "defaults": ["_defaults/tta_corruption"],
    "methods": [{"name": "source"}, {"name": "tent"}, {"name": "eta", "method": "tta/eata", "params": {"fisher_alpha": 0.0}}],
    "settings": [{"name": "reset_bs64", "batch_size": 64}],
    "scales": {SCALE: {"seeds": list(range(10))}},
}

# A writer: one checkout's `track` step. It pays its imports, says "ready", waits for the start
# file (so all writers start together), imports, and prints its summary.
WRITER = """
import json, sys, time
from pathlib import Path
from entrobench import aggregate, tracking
from entrobench.card import load_card
import mlflow.tracking
card, results, start = load_card(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
records = aggregate.load_records(card, "tiny", results)
print("ready", flush=True)
while not start.exists():
    time.sleep(0.01)
print("importing", flush=True)
summary = tracking.track(card, "tiny", records, results, attachments=[results / "plot.png"])
print(json.dumps({k: summary[k] for k in ("created", "unchanged", "replaced")}), flush=True)
"""


def write_card(work: Path) -> Card:
    configs = work / "configs"
    shutil.copytree(REPO / "configs" / "_defaults", configs / "_defaults")
    (configs / "tta").mkdir()
    path = configs / "tta" / "stores.yaml"
    path.write_text(yaml.safe_dump(CARD, sort_keys=False))
    return load_card(path)


def write_records(card: Card, results: Path, error: float = 10.0) -> None:
    """Records as run-cell writes them, with made-up metrics and curves, and a plot for the table run."""
    scaled = card.scale(SCALE)
    for i, cell in enumerate(expand(scaled)):
        rec = {"family": "tta", "scale": SCALE, "dataset": cell.dataset, "setting": cell.setting, "seed": cell.seed,
               "config": cell_config(scaled, cell), "config_hash": f"h{i}", "status": record.OK, "wall_s": 1.0, "peak_mem_mb": 50.0,
               "metrics": {"error_pct": error + i, "entropy_mean": 0.5}, "curves": {"entropy_mean": [1.0, 0.9, 0.8, 0.7]}}
        record.write(cell.record_path(results), rec)
    (results / "plot.png").write_bytes(b"plot " + str(error).encode())


def cell_keys(card: Card) -> list[str]:
    return [f"{SCALE}/{cell.key}" for cell in expand(card.scale(SCALE))]


def start_writer(card: Card, results: Path, start: Path, uri: str) -> subprocess.Popen:
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", WRITER, str(card.path), str(results), str(start)], cwd=results, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(proc: subprocess.Popen, line: str) -> None:
    for got in proc.stdout:
        if got.strip() == line:
            return
    raise AssertionError(f"writer ended before {line!r}: {proc.wait()} {proc.stderr.read()[-3000:]}")


@dataclass
class Audit:
    runs: int  # active runs in the card's experiment
    lost: int  # cells with no complete run, or whose run's data is not its record's
    duplicated: int  # active runs beyond one per cell (complete or not)
    incomplete: int  # active runs without the hash written last
    table_runs: int  # active runs of the card in the tables experiment

    def line(self, what: str) -> str:
        return (f"{what}: {self.runs} runs for {self.runs - self.duplicated} cells, {self.lost} lost, {self.duplicated} duplicated, "
                f"{self.incomplete} incomplete, {self.table_runs} table run(s)")


def audit(uri: str, card: Card, results: Path) -> Audit:
    """What the store holds for the card, against the records in `results`."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(card.id)
    found = client.search_runs([exp.experiment_id], max_results=1000) if exp else []
    by_key: dict[str, list] = {}
    for run in found:
        by_key.setdefault(run.data.tags.get(tracking.CELL_TAG, ""), []).append(run)
    expected = {f"{SCALE}/{rec['cell']}": rec for rec in aggregate.load_records(card, SCALE, results)}
    lost = 0
    for key, rec in expected.items():
        complete = [r for r in by_key.get(key, []) if r.data.tags.get(tracking.DONE_TAG)]
        if not any(r.data.metrics.get("error_pct") == rec["metrics"]["error_pct"] and r.info.status == "FINISHED" for r in complete):
            lost += 1
    tables = client.get_experiment_by_name(tracking.TABLES_EXPERIMENT)
    table_runs = [r for r in client.search_runs([tables.experiment_id]) if r.data.tags.get(tracking.CELL_TAG) == f"{card.id}/{SCALE}"] if tables else []
    return Audit(runs=len(found), lost=lost, duplicated=len(found) - len([k for k in by_key if k in expected]),
                 incomplete=sum(not r.data.tags.get(tracking.DONE_TAG) for r in found), table_runs=len(table_runs))


def summaries(procs: list[subprocess.Popen], timeout: float) -> list[dict]:
    """Each writer's summary; fails naming the writers that crashed."""
    out, crashed = [], []
    for i, proc in enumerate(procs):
        stdout, stderr = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            errors = [line for line in stderr.splitlines() if "Error" in line] or stderr.splitlines()[-1:]
            crashed.append(f"writer {i} exited {proc.returncode}: {errors[-1:]}")
        else:
            out.append(json.loads(stdout.strip().splitlines()[-1]))
    assert not crashed, "\n".join(crashed)
    return out
