"""The DAG end to end on a tiny card: table, claims, MLflow run count, no-op rerun, targeted rerun."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml


REPO = Path(__file__).resolve().parents[2]
CARD = "eata_niu2022"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores", "2"]

pytestmark = pytest.mark.slow


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([*SNAKEMAKE, "--directory", str(workdir), *args], capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny run of the EATA card in a scratch folder, with its own copy of the cards."""
    work = tmp_path_factory.mktemp("dag")
    shutil.copytree(REPO / "configs", work / "configs")
    proc = snakemake(work, "--config", f"configs={work / 'configs'}", "--", f"results/{CARD}/tiny/table.md")
    return work, proc


def mlflow_runs(work: Path, experiment: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{work / 'results' / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], max_results=1000)


def test_tiny_table_has_every_method_claims_and_protocol(tiny_run):
    work, _ = tiny_run
    table = (work / "results" / CARD / "tiny" / "table.md").read_text()
    for label in ("Source", "BN-adapt", "Tent", "ETA", "EATA"):
        assert f"| {label} " in table
    header = next(line for line in table.splitlines() if line.startswith("|") and "gaussian_noise" in line)
    assert [c.strip() for c in header.strip("|").split("|")][1:] == ["gaussian_noise", "contrast", "mean"], header
    assert "## Claims" in table
    verdicts = re.findall(r"\*\*(holds|fails|not tested at this scale|no data)\*\*", table)
    assert len(verdicts) == len(yaml.safe_load((REPO / "configs" / "tta" / f"{CARD}.yaml").read_text())["claims"]), verdicts
    assert {"holds", "fails"} & set(verdicts), verdicts  # at least one claim is judged at this scale
    assert "not tested at this scale" in table  # the Tent-vs-BN-adapt claim is for smoke and full only
    assert "## Protocol" in table and "architecture: small_cnn (paper: resnet50)" in table
    assert " ± " in table  # two seeds give a confidence interval
    for suffix in ("tex", "csv"):
        assert (work / "results" / CARD / "tiny" / f"table.{suffix}").stat().st_size > 0
    assert list((work / "results" / CARD / "tiny" / "plots").glob("*.png"))


def test_records_hold_provenance_and_curves(tiny_run):
    work, _ = tiny_run
    records = sorted((work / "results" / "cells" / "tiny").rglob("seed*.json"))
    assert len(records) == 5 * 2  # 5 methods x 1 dataset x 1 setting x 2 seeds
    rec = json.loads(records[0].read_text())
    for key in ("metrics", "status", "seed", "config_hash", "git_sha", "packages", "data_fingerprint", "wall_s", "peak_mem_mb", "device", "curves"):
        assert key in rec, key
    assert rec["status"] == "ok", rec.get("reason")
    assert len(rec["curves"]["entropy_mean"]) > 1


def test_one_mlflow_run_per_cell_and_rerun_does_nothing(tiny_run):
    work, _ = tiny_run
    runs = mlflow_runs(work, CARD)
    assert len(runs) == 10
    assert len({r.data.tags["entrobench.cell"] for r in runs}) == 10
    assert {"paper", "family", "method", "dataset", "scale", "seed", "config_hash"} <= set(runs[0].data.tags)
    assert all(r.data.tags["status"] == "ok" for r in runs)
    assert all(any(k.startswith("curve/") for k in r.data.metrics) for r in runs)

    again = snakemake(work, "--config", f"configs={work / 'configs'}", "--", f"results/{CARD}/tiny/table.md")
    assert "Nothing to be done" in again.stdout + again.stderr
    assert len(mlflow_runs(work, CARD)) == 10


def test_changing_one_method_parameter_reruns_only_its_cells(tiny_run):
    work, _ = tiny_run
    card_path = work / "configs" / "tta" / f"{CARD}.yaml"
    card = yaml.safe_load(card_path.read_text())
    eta = next(m for m in card["methods"] if m["name"] == "eta")
    eta["params"]["e0_frac"] = 0.5
    card_path.write_text(yaml.safe_dump(card, sort_keys=False))
    dry = snakemake(work, "-n", "--config", f"configs={work / 'configs'}", "--", f"results/{CARD}/tiny/table.md")
    planned = re.findall(r"^run_cell\s+(\d+)$", dry.stdout, re.M)  # the dry run's job-stats table
    assert planned and int(planned[0]) == 2, dry.stdout  # eta x 2 seeds, nothing else


def test_bad_card_stops_the_dag_with_one_line(tmp_path):
    configs = tmp_path / "configs"
    shutil.copytree(REPO / "configs", configs)
    bad = configs / "tta" / "eata_niu2022.yaml"
    bad.write_text(bad.read_text().replace("fisher_alpha: 0.0", "fisher_alph: 0.0"))
    proc = snakemake(tmp_path, "-n", "--config", f"configs={configs}", check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and "eata_niu2022.yaml: methods[3].params.fisher_alph: unknown key (did you mean fisher_alpha?)" in lines[-1]
