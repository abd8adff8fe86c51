"""One tiny RLVR cell through the command line: warm-up, GRPO run, held-out evaluation through
lm-eval, record, plots, and an MLflow run with the per-step curves as metric histories."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from entrobench import cli, record
from entrobench.card import load_card
from entrobench.cells import expand
from entrobench.protocols.rlvr.task import verify

REPO = Path(__file__).resolve().parents[3]
CARD = REPO / "configs" / "rlvr" / "clipcov_cui2025.yaml"

pytestmark = pytest.mark.slow


def test_tiny_cell_writes_a_record_and_an_mlflow_run(tmp_path, monkeypatch, run_cell_with_builds):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    configs = tmp_path / "configs"
    shutil.copytree(REPO / "configs", configs)
    card_path = configs / "rlvr" / CARD.name
    card = load_card(card_path)
    scaled = card.scale("tiny")
    cell = next(c for c in expand(scaled) if c.method == "clip_cov" and c.seed == 0)
    results = tmp_path / "results"

    out = cell.record_path(results)
    assert run_cell_with_builds(card_path, "tiny", cell.key, results, out) == 0
    rec = record.read(out)
    assert rec["status"] == record.OK, rec.get("reason")
    assert len(rec["curves"]["entropy"]) == scaled.protocol.steps
    assert 0 <= rec["metrics"]["pass_at_1"] <= 1 and rec["metrics"]["selected_frac"] > 0
    k = scaled.protocol.eval_samples
    assert {"accuracy", "pass_at_1", f"pass_at_{k}", f"maj_at_{k}", "accuracy_start", "pass_at_1_start"} <= set(rec["metrics"])
    assert rec["eval_backend"].startswith("lm-eval ") and rec["warmup"]["eval_backend"] == rec["eval_backend"]
    held_out = scaled.protocol.held_out
    sampled = [s for s in rec["samples"] if s["task"] == "eb_rlvr_addition"]
    greedy = [s for s in rec["samples"] if s["task"] == "eb_rlvr_addition_greedy"]
    assert len(sampled) == len(greedy) == held_out and all(len(s["responses"]) == k for s in sampled)
    assert rec["metrics"]["accuracy"] == pytest.approx(sum(verify(s["responses"][0], s["target"]) for s in greedy) / held_out)

    plots = tmp_path / "plots"
    assert cli.main(["plots", "--card", str(card_path), "--scale", "tiny", "--results", str(results), "--out", str(plots)]) == 0
    assert sorted(p.name for p in plots.glob("*.png")) == ["addition-g8_t1-curves.png", "addition-g8_t1-entropy-reward.png"]

    summary_path = tmp_path / "mlflow.json"
    assert cli.main(["track", "--card", str(card_path), "--scale", "tiny", "--results", str(results), "--out", str(summary_path)]) == 0
    summary = json.loads(summary_path.read_text())
    assert summary["created"] == 1

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=summary["tracking_uri"])
    run_id = summary["runs"][f"tiny/{cell.key}"]
    history = client.get_metric_history(run_id, "curve/entropy")
    assert [m.step for m in history] == list(range(scaled.protocol.steps))
    assert [m.value for m in history] == pytest.approx(rec["curves"]["entropy"])
    logged = client.get_run(run_id).data.metrics
    assert logged["pass_at_1"] == pytest.approx(rec["metrics"]["pass_at_1"]) and logged[f"maj_at_{k}"] == pytest.approx(rec["metrics"][f"maj_at_{k}"])
    assert [a.path for a in client.list_artifacts(run_id)] == [out.name]  # the record, lm-eval's samples included
