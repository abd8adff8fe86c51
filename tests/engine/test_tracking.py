"""MLflow import: one run per cell, reruns add nothing, a changed record replaces its run,
and two imports running at once (two cards) lose nothing."""
from __future__ import annotations

import hashlib
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


def test_a_rerun_adds_no_table_run(tmp_path):
    card = load_card(REPO / "configs" / "tta" / "eata_niu2022.yaml")
    fake_records(card.id, tmp_path)
    plot = tmp_path / "plot.png"
    plot.write_bytes(b"not really a png")
    for _ in range(3):
        tracking.track(card, "tiny", card_records(card, tmp_path), tmp_path, attachments=[plot])
    tables = runs(tmp_path, tracking.TABLES_EXPERIMENT)
    assert [r.data.tags[tracking.CELL_TAG] for r in tables] == [f"{card.id}/tiny"]
    assert tables[0].data.tags["scale"] == "tiny" and tables[0].data.tags[tracking.DONE_TAG]
    plot.write_bytes(b"another plot")  # a redrawn plot replaces the table run
    tracking.track(card, "tiny", card_records(card, tmp_path), tmp_path, attachments=[plot])
    assert len(runs(tmp_path, tracking.TABLES_EXPERIMENT)) == 1


def test_a_run_left_incomplete_by_a_killed_import_is_replaced(tmp_path):
    """A killed import leaves a run with its key but without the hash written last: the next
    import must not take it for the cell's run, and must leave one complete run per cell."""
    from mlflow.tracking import MlflowClient

    card = load_card(REPO / "configs" / "tta" / "eata_niu2022.yaml")
    fake_records(card.id, tmp_path)
    records = card_records(card, tmp_path)
    client = MlflowClient(tracking_uri=tracking.tracking_uri(tmp_path))
    exp_id = client.create_experiment(card.id)
    first = records[0]
    view = json.dumps([first["cell"], first["method_label"], card.spec.benchmark]).encode()
    sha = hashlib.sha256(Path(first["path"]).read_bytes() + view).hexdigest()[:16]
    # what a killed import of the old importer left: key and the right hash, set at creation, and no data
    client.create_run(exp_id, tags={tracking.CELL_TAG: f"tiny/{first['cell']}", "scale": "tiny", "entrobench.record_sha": sha})
    summary = tracking.track(card, "tiny", records, tmp_path)
    assert summary["created"] == 10 and summary["unchanged"] == 0
    found = runs(tmp_path, card.id)
    assert sorted(r.data.tags[tracking.CELL_TAG] for r in found) == sorted(f"tiny/{r['cell']}" for r in records)
    assert all(r.data.tags.get(tracking.DONE_TAG) and "error_pct" in r.data.metrics and r.info.status == "FINISHED" for r in found)


def test_a_shared_sqlite_store_is_locked_beside_its_file_with_artifacts_beside_it(tmp_path, monkeypatch):
    card = load_card(REPO / "configs" / "tta" / "eata_niu2022.yaml")
    shared = tmp_path / "shared" / "nested"  # a store folder that does not exist yet
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{shared / 'runs.db'}")
    for checkout in ("a", "b"):  # two checkouts, one store: the second adds nothing
        fake_records(card.id, tmp_path / checkout)
        summary = tracking.track(card, "tiny", card_records(card, tmp_path / checkout), tmp_path / checkout)
    assert summary["unchanged"] == 10
    assert (shared / "runs.db.lock").is_file() and not (tmp_path / "a" / ".mlflow.lock").exists()
    assert len(list((shared / "mlartifacts" / card.id).rglob("*.json"))) == 10
    assert not (tmp_path / "a" / "mlflow.db").exists()


@pytest.mark.parametrize("uri,lock", [
    ("sqlite:////shared/runs/mlflow.db", "/shared/runs/mlflow.db.lock"),
    ("sqlite:///rel/mlflow.db?timeout=30", "rel/mlflow.db.lock"),
    ("file:///shared/mlruns", "/shared/mlruns/.entrobench.lock"),
    ("http://127.0.0.1:5000", None),
    ("databricks", None),
    ("postgresql://host/db", None),
])
def test_local_stores_are_locked_beside_themselves_and_servers_not_at_all(uri, lock):
    assert tracking._lock_file(uri) == (Path(lock) if lock else None)
