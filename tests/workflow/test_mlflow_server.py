"""MLflow on a tracking server: 16 cells run in parallel (local executor), the track job imports
them into a real loopback `mlflow server`: 16 runs, none lost or doubled, and a rerun adds none."""
from __future__ import annotations

import collections
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_sixteen_parallel_cells_give_sixteen_runs_on_a_server(parallel_card, mlflow_server):
    work, card = parallel_card
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server}
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--workflow-profile", str(REPO / "workflows/profiles/local"),
           "--cores", "16", "--directory", str(work), "--config", f"configs={work / 'configs'}", "--", f"results/{card}/tiny/table.md"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert runs_per_cell(mlflow_server, card) == {key: 1 for key in runs_per_cell(mlflow_server, card)}
    assert len(runs_per_cell(mlflow_server, card)) == 16
    assert not (work / "results" / "mlflow.db").exists()  # everything went to the server

    again = subprocess.run([*cmd[:-2], "--forcerun", "track_card", "--", cmd[-1]], env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-4000:]
    assert "16 unchanged" in (work / "results" / card / "tiny" / "logs" / "mlflow.log").read_text()
    assert sorted(runs_per_cell(mlflow_server, card).values()) == [1] * 16


def runs_per_cell(uri: str, experiment: str) -> dict[str, int]:
    """Active runs per cell key in the experiment."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id], max_results=1000)
    return dict(collections.Counter(r.data.tags["entrobench.cell"] for r in runs))
