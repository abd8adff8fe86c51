"""A card end to end on a real (one-node) SLURM cluster: every job goes through sbatch, sacct
knows each cell's job id, records and MLflow tags hold it, the 16 cells give 16 runs on a loopback
MLflow server, and the table is the one a local run of the same seeds gives, byte for byte."""
from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def snakemake(work: Path, configs: Path, profile: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--workflow-profile", str(REPO / "workflows" / "profiles" / profile),
           "--directory", str(work), "--config", f"configs={configs}", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, f"snakemake ({profile}) failed:\n{proc.stderr[-6000:]}"
    return proc


def sacct_jobs() -> dict[str, str]:
    """Job id -> state of every job this cluster has accounted."""
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-a", "-S", "2000-01-01", "-o", "JobID,State"], capture_output=True, text=True, check=True).stdout
    return dict(line.split("|", 1) for line in out.split())


def test_card_runs_on_slurm_with_job_ids_one_mlflow_run_per_cell_and_the_local_table(slurm_cluster, parallel_card, mlflow_server, tmp_path_factory):
    work, card = parallel_card
    target = f"results/{card}/tiny/table.md"
    configs = work / "configs"  # both runs read the same cards: a table names its card's path
    snakemake(work, configs, "slurm", "slurm_account=entrobench", "--", target, env={"MLFLOW_TRACKING_URI": mlflow_server})

    records = [json.loads(p.read_text()) for p in sorted((work / "results" / "cells" / "tiny").rglob("seed*.json"))]
    assert len(records) == 16 and all(r["status"] == "ok" for r in records), [r.get("reason") for r in records]
    accounted = sacct_jobs()
    for rec in records:
        assert accounted.get(rec["slurm_job_id"]) == "COMPLETED", f"{rec['config']['method']} seed {rec['seed']}: job {rec['slurm_job_id']} not in sacct"
        requested = rec["cost"]["requested"]  # the tiny scale's resources: {mem_mb: 1000, runtime: 5}
        assert (requested["mem_mb"], requested["time_limit"], requested["account"]) == (1000, "00:05:00", "entrobench"), requested
        assert rec["cost"]["cpu_s"] > 0 and rec["cost"]["node"] == requested["node"]
    assert len({r["slurm_job_id"] for r in records}) == 16  # one job per cell

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server)
    runs = client.search_runs([client.get_experiment_by_name(card).experiment_id], max_results=1000)
    assert sorted(collections.Counter(r.data.tags["entrobench.cell"] for r in runs).values()) == [1] * 16
    assert {r.data.tags["slurm_job_id"] for r in runs} == {r["slurm_job_id"] for r in records}

    local = tmp_path_factory.mktemp("local")
    shutil.copytree(work / "results" / "_cache", local / "results" / "_cache")  # same data and source model: the cells are what is compared
    snakemake(local, configs, "local", "--", target)
    for name in ("table.md", "table.csv", "table.tex"):
        slurm_table = (work / "results" / card / "tiny" / name).read_text()
        assert slurm_table == (local / "results" / card / "tiny" / name).read_text(), f"{name} differs between SLURM and local"
