"""The one-node SLURM cluster the `slurm` tests submit to: started by scripts/slurm-cluster.sh
when none is running (and stopped, by PID, when the session ends), used as is when one is."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "slurm-cluster.sh"
PACKAGES = ("munge", "slurmctld", "slurmd", "slurm-client", "slurmdbd", "mariadb-server")


def _status() -> bool:
    return subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True).returncode == 0


def _installed() -> bool:
    return subprocess.run(["dpkg", "-s", *PACKAGES], capture_output=True).returncode == 0 if shutil.which("dpkg") else False


@pytest.fixture(scope="session")
def slurm_cluster():
    """Yields once `sbatch` and `sacct` work on this machine."""
    if shutil.which("sbatch") and _status():
        yield
        return
    if os.geteuid() != 0:
        pytest.skip("no SLURM cluster running, and starting one needs root (scripts/slurm-cluster.sh installs slurm-wlm and starts its daemons)")
    if not _installed() and not shutil.which("apt-get"):
        pytest.skip(f"no SLURM cluster running, and no apt-get to install {' '.join(PACKAGES)}")
    proc = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"scripts/slurm-cluster.sh start failed:\n{proc.stderr[-4000:]}"
    try:
        yield
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, timeout=300)
