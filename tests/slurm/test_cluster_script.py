"""scripts/slurm-cluster.sh is safe to run twice, and its cluster schedules fake-GPU jobs."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "slurm-cluster.sh"

pytestmark = pytest.mark.slurm


def test_start_again_changes_nothing(slurm_cluster):
    before = subprocess.run(["pgrep", "-x", "slurmctld"], capture_output=True, text=True).stdout.split()
    again = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stderr or "not started by this script" in again.stderr
    assert subprocess.run(["pgrep", "-x", "slurmctld"], capture_output=True, text=True).stdout.split() == before


def test_a_gpu_job_schedules_and_is_accounted(slurm_cluster, tmp_path):
    job = subprocess.run(["sbatch", "--parsable", "--gpus=1", "--mem=100", "-t", "1", "-D", str(tmp_path), "-o", str(tmp_path / "out"), "--wrap", "echo gpus=$SLURM_JOB_GPUS"],
                         capture_output=True, text=True, check=True).stdout.strip()
    for _ in range(120):
        state = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job, "-o", "State,AllocTRES"], capture_output=True, text=True).stdout.strip()
        if state.startswith(("COMPLETED", "FAILED", "CANCELLED")):
            break
        time.sleep(0.5)
    assert state.startswith("COMPLETED") and "gres/gpu=1" in state, state
    assert (tmp_path / "out").read_text().strip() == "gpus=0"
