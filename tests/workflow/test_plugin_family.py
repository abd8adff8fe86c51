"""A family defined entirely under tests/plugin (its schema, a cached input, one method) runs
through the DAG with no edit to any central file; a cell that raises fails the run, is never
counted as done, and the table still renders, naming the cell and why."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "tests" / "plugin"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores", "2"]

pytestmark = pytest.mark.slow


def snakemake(work: Path, configs: Path, plugin: Path, *targets: str) -> subprocess.CompletedProcess:
    return subprocess.run([*SNAKEMAKE, "--directory", str(work), "--config", f"configs={configs}", f"plugins={plugin}", "--", *targets],
                          capture_output=True, text=True, timeout=600)


def test_a_family_outside_the_project_runs_through_the_dag(tmp_path):
    proc = snakemake(tmp_path, PLUGIN / "configs", PLUGIN, "results/toy_means/tiny/table.md")
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = (tmp_path / "results" / "toy_means" / "tiny" / "table.md").read_text()
    assert "## normal · shifted" in table and "| trimmed " in table
    assert "**holds**" in table  # the card's claim, judged on the runs
    records = sorted((tmp_path / "results" / "cells" / "tiny").rglob("seed*.json"))
    assert len(records) == 2 * 2 * 2 * 3  # rows x datasets x settings x seeds
    samples = sorted((tmp_path / "results" / "_cache" / "toy" / "sample").iterdir())
    assert [p.name.split("-")[0] for p in samples] == ["normal", "uniform"]  # one build per dataset, shared by 12 cells each
    assert json.loads((tmp_path / "results" / "toy_means" / "tiny" / "mlflow.json").read_text())["created"] == 24


def test_a_failing_cell_fails_the_run_and_the_table_names_it(tmp_path):
    plugin = tmp_path / "plugin"
    shutil.copytree(PLUGIN, plugin)
    (plugin / "methods" / "toy" / "explode.py").write_text(
        "from dataclasses import dataclass\n\nfrom methods.registry import register\n\n\n"
        "@register('toy/explode')\nclass Explode:\n    @dataclass(frozen=True)\n    class Params:\n        pass\n\n"
        "    def __init__(self, params):\n        pass\n\n    def estimate(self, values, rng):\n        raise ValueError('the estimator broke')\n")
    card_path = plugin / "configs" / "toy" / "toy_means.yaml"
    card = yaml.safe_load(card_path.read_text())
    card["methods"].append({"name": "explode", "method": "toy/explode"})
    card["datasets"], card["settings"], card["seeds"] = ["normal"], [{"name": "plain"}], [0]
    card_path.write_text(yaml.safe_dump(card))
    work = tmp_path / "work"
    first = snakemake(work, plugin / "configs", plugin, "results/toy_means/tiny/table.md")
    assert first.returncode != 0
    table = (work / "results" / "toy_means" / "tiny" / "table.md").read_text()  # rendered anyway, from what ran
    assert "| mean " in table and "| trimmed " in table
    assert "failed" in table and "ValueError: the estimator broke" in table
    second = snakemake(work, plugin / "configs", plugin, "results/toy_means/tiny/table.md")
    assert second.returncode != 0 and "run_cell" in second.stderr  # retried, not counted as done
    assert not list((work / "results" / "cells").rglob("toy.explode-*/seed0.json"))
