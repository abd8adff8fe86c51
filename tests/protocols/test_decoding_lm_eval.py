"""lm-eval end to end on a tiny model built from a config (no download, offline): a decoding cell
through the CLI writes a record with every metric and per-sample outputs, and `track` mirrors it
into one MLflow run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # lm-eval end to end: about 30 s
CELL = "lm_eval_tasks/t1_0/top_h/seed0"


@pytest.fixture(scope="module")
def decoding_run(tmp_path_factory, tiny_chat_lm, run_cell_with_builds):
    import shutil

    work = tmp_path_factory.mktemp("decoding")
    shutil.copytree(tiny_chat_lm, work / "data" / "tiny_lm")
    card = yaml.safe_load((REPO / "configs" / "decoding" / "top_h_potraghloo2025.yaml").read_text())
    card["scales"]["tiny"]["protocol"].update(model="tiny_lm")
    (work / "configs" / "decoding").mkdir(parents=True)
    card_path = work / "configs" / "decoding" / "top_h_potraghloo2025.yaml"
    card_path.write_text(yaml.safe_dump(card))
    record_path = work / "record.json"
    assert run_cell_with_builds(card_path, "tiny", CELL, work / "results", record_path, data_root=work / "data") == 0
    return work, card_path, json.loads(record_path.read_text())


def test_record_holds_every_metric_and_the_samples(decoding_run):
    _, _, rec = decoding_run
    assert rec["status"] == "ok", rec.get("reason")
    metrics = rec["metrics"]
    for name in ("acc_capitals", "acc_add2", "acc_mean", "distinct_1", "distinct_2", "self_bleu", "coherence", "token_entropy", "kept_tokens"):
        assert name in metrics, name
    assert 0 <= metrics["acc_mean"] <= 1 and 0 < metrics["distinct_2"] <= 1
    assert metrics["coherence"] < 0 and metrics["token_entropy"] > 0
    assert metrics["kept_tokens"] >= 1  # top-H keeps at least the top token
    tasks = [s["task"] for s in rec["samples"]]
    assert tasks.count("eb_capitals") == 4 and tasks.count("eb_add2") == 4 and tasks.count("eb_open_ended") == 3
    assert rec["config"]["method"] == "decoding/top_h" and rec["config"]["setting"]["temperature"] == 1.0


def test_same_seed_gives_the_same_outputs(decoding_run, tmp_path):
    from entrobench import cli

    work, card_path, rec = decoding_run
    again = tmp_path / "again.json"
    args = ["run-cell", "--card", str(card_path), "--scale", "tiny", "--cell", CELL, "--data-root", str(work / "data"), "--results", str(work / "results"), "--out", str(again)]
    assert cli.main(args) == 0
    assert [s["response"] for s in json.loads(again.read_text())["samples"]] == [s["response"] for s in rec["samples"]]


def test_track_makes_one_mlflow_run_for_the_cell(decoding_run):
    from mlflow.tracking import MlflowClient

    from entrobench import cells, tracking
    from entrobench.card import load_card

    work, card_path, rec = decoding_run
    card = load_card(card_path)
    cell = next(c for c in cells.expand(card.scale("tiny")) if c.method == "top_h")
    results = work / "results"
    cell.record_path(results).parent.mkdir(parents=True, exist_ok=True)
    cell.record_path(results).write_text(json.dumps(rec))
    view = {"card": card.id, "cell": cell.key, "method": "top_h", "method_label": "Top-H", "path": str(cell.record_path(results))}
    summary = tracking.track(card, "tiny", [{**rec, **view}], results)
    assert summary["created"] == 1
    client = MlflowClient(tracking_uri=tracking.tracking_uri(results))
    run = client.get_run(summary["runs"][f"tiny/{cell.key}"])
    assert run.data.metrics["acc_mean"] == pytest.approx(rec["metrics"]["acc_mean"])
    assert run.data.params["method"] == "decoding/top_h"


def test_missing_package_model_is_a_skip_with_a_reason(tmp_path):
    from entrobench.models import packaged
    from entrobench.record import Skip

    with pytest.raises(Skip, match="no_such_package_here not installed"):
        packaged.convert_model({"package": "no_such_package_here", "gguf_file": "x.gguf"}, tmp_path / "model")
