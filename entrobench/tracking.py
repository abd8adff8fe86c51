"""MLflow mirrors the records: one run per cell, imported from one place, never duplicated.

Records are the truth; MLflow is the index. Cells never talk to MLflow themselves: parallel
jobs writing one SQLite file lose runs. Instead the `track` rule imports a card's records
after its cells finish, under a file lock, and keys each run by its cell: a rerun with the
same record changes nothing, a changed record replaces the cell's run.

Store: `MLFLOW_TRACKING_URI` if set (e.g. a server), else `sqlite:///<results>/mlflow.db`
with artifacts in `<results>/mlartifacts/`. Browse with
`mlflow ui --backend-store-uri sqlite:///results/mlflow.db`.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path

from entrobench import record
from entrobench.card import Card

CELL_TAG = "entrobench.cell"
SHA_TAG = "entrobench.record_sha"
TABLES_EXPERIMENT = "entrobench-tables"  # one run per card and scale: the rendered table and plots
_MAX_PARAM = 500


def tracking_uri(results: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(results / 'mlflow.db').resolve()}"


def track(card: Card, scale: str, records: list[dict], results: Path, attachments: list[Path] = ()) -> dict:
    """Import a card's records (as `aggregate.load_records` gives them: the record seen through the
    card) into experiment `card.id`, and its plots into TABLES_EXPERIMENT."""
    with _store_lock(results):
        client = _client(results)
        exp_id = _experiment(client, card.id, results)
        existing = _runs_by_key(client, exp_id, scale)
        counts = {"created": 0, "unchanged": 0, "replaced": 0}
        run_ids = {}
        for rec in records:
            path = Path(rec["path"])
            view = json.dumps([rec["cell"], rec["method_label"], card.spec.benchmark]).encode()  # the card's names are tags too
            sha = hashlib.sha256(path.read_bytes() + view).hexdigest()[:16]
            key = f"{scale}/{rec['cell']}"
            run_ids[key] = _upsert(client, exp_id, key, sha, existing.get(key, []), counts, lambda run_id, rec=rec, path=path: _log_cell(client, run_id, rec, path, card))
        if attachments:
            table_exp = _experiment(client, TABLES_EXPERIMENT, results)
            key = f"{card.id}/{scale}"
            sha = hashlib.sha256(b"".join(p.read_bytes() for p in attachments)).hexdigest()[:16]
            _upsert(client, table_exp, key, sha, _runs_by_key(client, table_exp, scale).get(key, []), {"created": 0, "unchanged": 0, "replaced": 0},
                    lambda run_id: _log_table(client, run_id, card, scale, attachments))
    return {**counts, "experiment": card.id, "tracking_uri": tracking_uri(results), "runs": run_ids}


def _upsert(client, exp_id: str, key: str, sha: str, runs: list, counts: dict, log) -> str:
    if len(runs) == 1 and runs[0].data.tags.get(SHA_TAG) == sha:
        counts["unchanged"] += 1
        return runs[0].info.run_id
    for old in runs:  # a changed record, or leftovers of an interrupted import: one run per key
        client.delete_run(old.info.run_id)
    counts["replaced" if runs else "created"] += 1
    run = client.create_run(exp_id, run_name=key.split("/", 1)[1], tags={CELL_TAG: key, SHA_TAG: sha, "scale": key.split("/", 1)[0]})
    try:
        log(run.info.run_id)
    except Exception:
        client.set_terminated(run.info.run_id, status="FAILED")
        raise
    return run.info.run_id


def _log_cell(client, run_id: str, rec: dict, path: Path, card: Card) -> None:
    from mlflow.entities import Metric, Param, RunTag

    tags = {
        "paper": rec["card"], "card": rec["card"], "family": rec["family"], "benchmark": card.spec.benchmark,
        "method": rec["method"], "method_label": rec["method_label"], "method_registry": rec["config"]["method"], "dataset": rec["dataset"],
        "setting": rec["setting"], "seed": str(rec["seed"]), "config_hash": rec["config_hash"],
        "git_sha": rec.get("git_sha", ""), "status": rec["status"], "reason": rec.get("reason", "")[:5000],
        "device": rec.get("device", ""), "slurm_job_id": rec.get("slurm_job_id") or "",
    }
    params = _flatten({k: rec["config"][k] for k in ("params", "setting", "protocol")})
    params["method"] = rec["config"]["method"]
    metrics = [Metric(name, float(value), 0, 0) for name, value in rec["metrics"].items()]
    metrics += [Metric("cost/wall_s", rec["wall_s"], 0, 0), Metric("cost/peak_mem_mb", rec["peak_mem_mb"], 0, 0)]
    if "cost" in rec:  # CPU-seconds, GPUs held, and where it ran (records from before costs lack it)
        metrics += [Metric("cost/cpu_s", rec["cost"]["cpu_s"], 0, 0), Metric("cost/gpus", rec["cost"]["gpus"], 0, 0)]
        tags["node"] = rec["cost"]["node"]
    for name, values in rec.get("curves", {}).items():
        metrics += [Metric(f"curve/{name}", float(v), 0, step) for step, v in enumerate(values)]
    client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()], tags=[RunTag(k, v) for k, v in tags.items()])
    for start in range(0, len(metrics), 1000):  # MLflow's per-call limit
        client.log_batch(run_id, metrics=metrics[start : start + 1000])
    client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, status="FAILED" if rec["status"] == record.FAILED else "FINISHED")


def _log_table(client, run_id: str, card: Card, scale: str, attachments: list[Path]) -> None:
    client.set_tag(run_id, "card", card.id)
    client.set_tag(run_id, "family", card.spec.family)
    for path in attachments:
        client.log_artifact(run_id, str(path))
    client.set_terminated(run_id)


def _flatten(config: dict, prefix: str = "") -> dict[str, str]:
    out = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            text = json.dumps(value) if not isinstance(value, str) else value
            out[name] = text if len(text) <= _MAX_PARAM else text[: _MAX_PARAM - 3] + "..."
    return out


def _client(results: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri(results))


def _experiment(client, name: str, results: Path) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = None
    if "MLFLOW_TRACKING_URI" not in os.environ:
        location = (results / "mlartifacts" / name).resolve().as_uri()
    return client.create_experiment(name, artifact_location=location)


def _runs_by_key(client, exp_id: str, scale: str) -> dict[str, list]:
    runs, token = [], None
    while True:
        page = client.search_runs([exp_id], filter_string=f"tags.scale = '{scale}'", max_results=1000, page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            break
    by_key: dict[str, list] = {}
    for run in runs:
        by_key.setdefault(run.data.tags.get(CELL_TAG, ""), []).append(run)
    return by_key


@contextmanager
def _store_lock(results: Path):
    """Serialize writers of the local SQLite store (two cards' imports may run at once)."""
    results.mkdir(parents=True, exist_ok=True)
    with open(results / ".mlflow.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
