"""The slurm profile's plan: each job asks for its card scale's resources, partition and account
come from --config for every submitted job, and plots, MLflow and tables stay on the login node."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
LOCAL_RULES = {"render_plots", "track_card", "render_table", "render_leaderboard", "skip_cell"}

pytestmark = pytest.mark.slurm


def test_full_scale_plan_asks_for_the_cards_resources_in_the_given_partition(slurm_cluster, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--workflow-profile", str(REPO / "workflows/profiles/slurm"),
                           "-n", "--directory", str(tmp_path), "--config", "slurm_partition=gpux", "slurm_account=acct", f"data_root={tmp_path}",
                           "--", "results/eata_niu2022/full/table.md"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = re.findall(r"^(?:local)?rule (\w+):.*?^\s+output: (\S+).*?^\s+resources: (.*?)$", proc.stdout, re.M | re.S)
    assert {rule for rule, _, _ in jobs} >= {"run_cell", "build"} | LOCAL_RULES - {"render_leaderboard", "skip_cell"}
    kinds = {output.split("/")[3] for rule, output, _ in jobs if rule == "build"}
    assert {"data", "source"} <= kinds, kinds
    full = ("mem_mb=32000", "runtime=240", "gpu=1", "cpus_per_task=8", "slurm_extra=--signal=TERM@120")  # _defaults/tta_corruption.yaml: full
    for rule, output, resources in jobs:
        placed = "slurm_partition=gpux" in resources and "slurm_account=acct" in resources
        assert placed == (rule not in LOCAL_RULES), (rule, resources)
        heavy = rule == "run_cell"  # data preparation and checking staged weights ask for no GPU
        assert all(f"{r}," in resources + "," for r in full) == heavy, (rule, output, resources)


def _plan(tmp_path, configs: Path, target: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--workflow-profile", str(REPO / "workflows/profiles/slurm"),
                           "-n", "--directory", str(tmp_path), "--config", "slurm_partition=gpux", f"data_root={tmp_path}", f"configs={configs}",
                           "--", target], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_the_rlvr_recipe_asks_for_a_node_of_eight_gpus_per_cell(slurm_cluster, tmp_path):
    proc = _plan(tmp_path, REPO / "configs", "results/clipcov_cui2025/full/table.md")
    jobs = re.findall(r"^(?:local)?rule (\w+):.*?^\s+resources: (.*?)$", proc.stdout, re.M | re.S)
    cells = [resources for rule, resources in jobs if rule == "run_cell"]
    assert len(cells) == 21 and all("gpu=8," in r and "cpus_per_task=64," in r and "runtime=2880," in r for r in cells), cells[:1]


def test_cells_skipped_by_design_run_on_the_login_node_without_a_gpu(slurm_cluster, tmp_path):
    """A card asking our own trainer for what it cannot run (the character addition task with a
    pretrained chat model): its cells only write 'skipped', by a local rule, with no sbatch job and
    no GPU; the dry run starts with the cost plan, which counts them as skipped."""
    configs = tmp_path / "configs"
    (configs / "rlvr").mkdir(parents=True)
    card = yaml.safe_load((REPO / "configs" / "rlvr" / "clipcov_cui2025.yaml").read_text())
    card["protocol"].update(engine="ours", model="smollm2_135m_instruct")
    card["datasets"] = ["addition"]
    (configs / "rlvr" / "clipcov_cui2025.yaml").write_text(yaml.safe_dump(card))
    proc = _plan(tmp_path / "work", configs, "results/clipcov_cui2025/full/table.md")
    jobs = re.findall(r"^(?:local)?rule (\w+):.*?^\s+resources: (.*?)$", proc.stdout, re.M | re.S)
    assert {rule for rule, _ in jobs} == {"skip_cell"} | LOCAL_RULES - {"render_leaderboard"}
    assert all("gpu" not in resources and "slurm_partition" not in resources for _, resources in jobs)
    plan_row = next(line for line in proc.stdout.splitlines() if line.startswith("clipcov_cui2025"))
    assert plan_row.split()[2:8] == ["21", "(21", "skipped)", "0", "0.0", "-"], plan_row
