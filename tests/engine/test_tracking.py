"""MLflow import: one run per cell, reruns add nothing, a changed record replaces its run,
and two imports running at once (two cards) lose nothing."""
from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from entrobench import aggregate, record, tracking
from entrobench.card import load_card
from entrobench.cells import cell_config, expand

REPO = Path(__file__).resolve().parents[2]


def fake_records(card_id: str, results: Path, error: float = 10.0) -> list[Path]:
    """Records as run-cell writes them, with made-up metrics (the importer does not care)."""
    card = load_card(REPO / "configs" / "tta" / f"{card_id}.yaml")
    scaled = card.scale("tiny")
    paths = []
    for cell in expand(scaled):
        config = cell_config(scaled, cell)
        rec = {
            "family": "tta", "scale": "tiny", "dataset": cell.dataset, "setting": cell.setting, "seed": cell.seed, "config": config, "config_hash": "abc", "status": "ok", "wall_s": 1.0, "peak_mem_mb": 100.0,
            "metrics": {"error_pct": error + cell.seed, "error_pct/gaussian_noise": error},
            "curves": {"entropy_mean": [1.0, 0.9, 0.8]},
        }
        paths.append(record.write(cell.record_path(results), rec))
    return paths


def card_records(card, results: Path) -> list[dict]:
    return aggregate.load_records(card, "tiny", results)


def runs(results: Path, experiment: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking.tracking_uri(results))
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], max_results=1000)


@pytest.fixture(autouse=True)
def local_store(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def test_one_run_per_cell_and_no_duplicates_on_rerun(tmp_path):
    card = load_card(REPO / "configs" / "tta" / "eata_niu2022.yaml")
    paths = fake_records(card.id, tmp_path)
    first = tracking.track(card, "tiny", card_records(card, tmp_path), tmp_path)
    assert first["created"] == len(paths) == 10
    again = tracking.track(card, "tiny", card_records(card, tmp_path), tmp_path)
    assert again["created"] == 0 and again["unchanged"] == 10
    found = runs(tmp_path, card.id)
    assert len(found) == 10
    run = found[0]
    assert run.data.tags["paper"] == card.id and run.data.tags["scale"] == "tiny"
    assert "error_pct" in run.data.metrics and "params.lr" in run.data.params


def test_changed_record_replaces_its_run(tmp_path):
    card = load_card(REPO / "configs" / "tta" / "eata_niu2022.yaml")
    paths = fake_records(card.id, tmp_path)
    tracking.track(card, "tiny", card_records(card, tmp_path), tmp_path)
    rec = json.loads(paths[0].read_text())
    rec["metrics"]["error_pct"] = 99.0
    record.write(paths[0], rec)
    summary = tracking.track(card, "tiny", card_records(card, tmp_path), tmp_path)
    assert summary["replaced"] == 1 and summary["unchanged"] == 9
    found = runs(tmp_path, card.id)
    assert len(found) == 10
    assert sorted(r.data.metrics["error_pct"] for r in found)[-1] == 99.0


def _track_in_child(card_id: str, results: str) -> None:
    card = load_card(REPO / "configs" / "tta" / f"{card_id}.yaml")
    tracking.track(card, "tiny", card_records(card, Path(results)), Path(results))


def test_parallel_imports_lose_nothing(tmp_path):
    cards = ["eata_niu2022", "sar_niu2023", "deyo_lee2024"]
    for card_id in cards:
        fake_records(card_id, tmp_path)  # cards that agree on a cell share its record; each card still gets its run
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_track_in_child, args=(c, str(tmp_path))) for c in cards]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    for card_id in cards:
        assert len(runs(tmp_path, card_id)) == 10
