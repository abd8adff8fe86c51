"""Without a data root, cells that need one are skipped with a reason the table shows, and the
full-scale DAG still plans (snakemake -n) with no data present."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores", "2"]

pytestmark = pytest.mark.slow


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([*SNAKEMAKE, "--directory", str(workdir), *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def test_cells_needing_a_missing_data_root_are_skipped_and_the_table_says_why(tmp_path):
    configs = tmp_path / "configs"
    shutil.copytree(REPO / "configs" / "_defaults", configs / "_defaults")
    (configs / "tta").mkdir()
    card = {
        "version": 1, "title": "MNIST without data", "arxiv": "0000.00000", "defaults": ["_defaults/tta_corruption"],
        "methods": [{"name": "source"}, {"name": "tent"}],
        "settings": [{"name": "reset_bs64", "batch_size": 64}],
        "scales": {"tiny": {"datasets": ["mnist_c"], "seeds": [0]}},
        "claims": [{"text": "tent.error_pct < source.error_pct"}],
    }
    (configs / "tta" / "no_data.yaml").write_text(yaml.safe_dump(card))
    empty = tmp_path / "empty_root"
    empty.mkdir()
    snakemake(tmp_path, "--config", f"configs={configs}", f"data_root={empty}", "--", "results/no_data/tiny/table.md")
    table = (tmp_path / "results" / "no_data" / "tiny" / "table.md").read_text()
    assert "## Cells that did not run" in table
    assert "skipped" in table and str(empty / "mnist_test") in table
    assert "**no data**" in table  # the claim cannot be judged, and says so


def test_full_scale_plans_without_data(tmp_path):
    proc = snakemake(tmp_path, "-n", "--config", f"data_root={tmp_path}", "--", "results/eata_niu2022/full/table.md", "results/sar_niu2023/full/table.md")
    assert "run_cell" in proc.stdout and "results/_cache/tta/source/imagenet_c-resnet50-bn" in proc.stdout
