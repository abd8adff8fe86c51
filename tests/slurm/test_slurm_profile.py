"""The slurm profile's plan: each job asks for its card scale's resources, partition and account
come from --config for every submitted job, and plots, MLflow and tables stay on the login node."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCAL_RULES = {"render_plots", "track_card", "render_table", "render_leaderboard"}

pytestmark = pytest.mark.slurm


def test_full_scale_plan_asks_for_the_cards_resources_in_the_given_partition(slurm_cluster, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--workflow-profile", str(REPO / "workflows/profiles/slurm"),
                           "-n", "--directory", str(tmp_path), "--config", "slurm_partition=gpux", "slurm_account=acct", f"data_root={tmp_path}",
                           "--", "results/eata_niu2022/full/table.md"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = re.findall(r"^(?:local)?rule (\w+):.*?^\s+output: (\S+).*?^\s+resources: (.*?)$", proc.stdout, re.M | re.S)
    assert {rule for rule, _, _ in jobs} >= {"run_cell", "build"} | LOCAL_RULES - {"render_leaderboard"}
    kinds = {output.split("/")[3] for rule, output, _ in jobs if rule == "build"}
    assert {"data", "source"} <= kinds, kinds
    full = ("mem_mb=32000", "runtime=240", "gpu=1", "slurm_extra=--signal=TERM@120")  # _defaults/tta_corruption.yaml: full
    for rule, output, resources in jobs:
        placed = "slurm_partition=gpux" in resources and "slurm_account=acct" in resources
        assert placed == (rule not in LOCAL_RULES), (rule, resources)
        heavy = rule == "run_cell" or "/_cache/tta/source/" in output  # data preparation asks for no GPU
        assert all(f"{r}," in resources + "," for r in full) == heavy, (rule, output, resources)
