"""MLflow mirrors the records: one run per cell, imported from one place, never duplicated or lost.

Records are the truth; MLflow is the index. Cells never talk to MLflow themselves: parallel
jobs writing one SQLite file lose runs. Instead the `track` rule imports a card's records after
its cells finish, and keys each run by its cell (tag CELL_TAG): a rerun with the same record
changes nothing, a changed record replaces the cell's run.

A run is complete only once its last write is in: the record's hash, tag DONE_TAG, written after
the data, the artifact and the status. A run without it is an import that was killed (or one
still going on in another process) and never counts as the cell's run.

Several imports may write one store at once: two cards of one checkout, or separate checkouts
sharing a SQLite file or a tracking server. Two things keep them from losing or doubling runs:
- a SQLite (or file) store is locked for the whole import by a file lock beside it, so writers
  of that store, from any checkout, take turns, and only the first creates the database;
- on any store (a server has no file to lock), each import converges through MLflow itself: it
  searches the cell's runs, writes its own run where the cell has no complete run (or one of
  another record), then searches again, and again, until it sees exactly one run for each of its
  cells, complete. Where it sees more, the newest complete run (by start time, then id: an order
  every writer agrees on) is the cell's run and it deletes the others, incomplete ones included;
  it deletes nothing while a cell has no complete run, so no writer's work is thrown away before
  there is a complete run to keep. Each writer's last look sees the store after all its own
  writes, so the last writer to finish sees, and leaves, one complete run per cell.

Store: `MLFLOW_TRACKING_URI` if set (e.g. a server, or one SQLite file shared by checkouts),
else `sqlite:///<results>/mlflow.db`; a SQLite store keeps its artifacts beside it, in
`mlartifacts/`. Browse with `mlflow ui --backend-store-uri sqlite:///results/mlflow.db`.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import random
import time
from pathlib import Path
from urllib.parse import urlparse

from entrobench import record
from entrobench.card import Card

CELL_TAG = "entrobench.cell"  # the run's key, "<scale>/<cell>" (a table run's: "<card>/<scale>"), set at creation
DONE_TAG = "entrobench.imported_sha"  # the record's hash, written last: a run without it is incomplete
TABLES_EXPERIMENT = "entrobench-tables"  # one run per card and scale: the rendered table and plots
_MAX_PARAM = 500
_MAX_ROUNDS = 40  # searches per import before giving up on a store that other writers keep changing


def tracking_uri(results: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(results / 'mlflow.db').resolve()}"


def track(card: Card, scale: str, records: list[dict], results: Path, attachments: list[Path] = ()) -> dict:
    """Import a card's records (as `aggregate.load_records` gives them: the record seen through the
    card) into experiment `card.id`, and its plots into TABLES_EXPERIMENT."""
    uri = tracking_uri(results)
    with _store_lock(uri):
        client = _client(uri)
        wanted = {}
        for rec in records:
            path = Path(rec["path"])
            view = json.dumps([rec["cell"], rec["method_label"], card.spec.benchmark]).encode()  # the card's names are tags too
            sha = hashlib.sha256(path.read_bytes() + view).hexdigest()[:16]
            wanted[f"{scale}/{rec['cell']}"] = (sha, lambda run_id, rec=rec, path=path: _log_cell(client, run_id, rec, path, card))
        run_ids, counts = _sync(client, _experiment(client, card.id, uri), scale, wanted)
        if attachments:
            sha = hashlib.sha256(b"".join(p.read_bytes() for p in attachments)).hexdigest()[:16]
            table = {f"{card.id}/{scale}": (sha, lambda run_id: _log_table(client, run_id, card, attachments))}
            _sync(client, _experiment(client, TABLES_EXPERIMENT, uri), scale, table)
    return {**counts, "experiment": card.id, "tracking_uri": uri, "runs": run_ids}


def _sync(client, exp_id: str, scale: str, wanted: dict[str, tuple]) -> tuple[dict[str, str], dict[str, int]]:
    """Leave exactly one run, complete, for each key of `wanted` (key -> (record hash, log function)),
    holding this import's record unless another writer's complete run replaced it meanwhile (the
    last writer wins). Returns each key's run id, and how many runs were created, replaced or
    found unchanged."""
    counts = {"created": 0, "unchanged": 0, "replaced": 0}
    completed: set[str] = set()  # keys whose run this import wrote to the end
    for attempt in range(_MAX_ROUNDS):
        by_key = _runs_by_key(client, exp_id, scale)
        settled, to_write, to_delete = {}, [], []
        for key, (sha, _) in wanted.items():
            runs = by_key.get(key, [])
            chosen = max((r for r in runs if r.data.tags.get(DONE_TAG)), key=_creation_order, default=None)
            if attempt == 0:
                counts["created" if chosen is None else "unchanged" if chosen.data.tags[DONE_TAG] == sha else "replaced"] += 1
            if chosen is None or (chosen.data.tags[DONE_TAG] != sha and key not in completed):
                to_write.append(key)
            elif len(runs) > 1:
                to_delete += [r for r in runs if r is not chosen]  # duplicates, replaced runs, interrupted imports
            else:
                settled[key] = chosen.info.run_id
        if len(settled) == len(wanted):
            return settled, counts
        for run in to_delete:
            _delete(client, run.info.run_id)
        for key in to_write:
            sha, log = wanted[key]
            if _write_run(client, exp_id, key, scale, sha, log):
                completed.add(key)
        if attempt >= 2:  # other writers are at it too: desynchronize
            time.sleep(random.uniform(0.0, 0.2 * min(attempt, 10)))
    raise RuntimeError(f"MLflow experiment {exp_id}: its runs were still changing under other writers' imports after {_MAX_ROUNDS} "
                       "rounds; rerun the track step")


def _write_run(client, exp_id: str, key: str, scale: str, sha: str, log) -> bool:
    """Create the key's run, log into it and mark it complete (DONE_TAG, last). False if another
    writer, finding a complete run of the key, deleted this one while it was being written."""
    from mlflow.exceptions import MlflowException

    run_id = client.create_run(exp_id, run_name=key.split("/", 1)[1], tags={CELL_TAG: key, "scale": scale}).info.run_id
    try:
        log(run_id)
        client.set_tag(run_id, DONE_TAG, sha)
    except MlflowException:
        if client.get_run(run_id).info.lifecycle_stage == "deleted":
            return False
        _delete(client, run_id)
        raise
    except BaseException:
        with contextlib.suppress(Exception):  # incomplete anyway: gone sooner is tidier (after a kill, the next import deletes it)
            client.delete_run(run_id)
        raise
    return True


def _delete(client, run_id: str) -> None:
    """Delete a run; one that another writer deleted first (even for good) is as well gone."""
    from mlflow.exceptions import MlflowException

    try:
        client.delete_run(run_id)
    except MlflowException as err:
        if err.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise


def _creation_order(run) -> tuple:
    return run.info.start_time or 0, run.info.run_id


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
    for name in rec.get("artifacts", []):  # files the cell kept beside its record (e.g. a field plot)
        kept = path.with_suffix(".files") / name
        if kept.is_file():
            client.log_artifact(run_id, str(kept))
    client.set_terminated(run_id, status="FAILED" if rec["status"] == record.FAILED else "FINISHED")


def _log_table(client, run_id: str, card: Card, attachments: list[Path]) -> None:
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


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # a server's client prints a link per run otherwise
    return MlflowClient(tracking_uri=uri)


def _experiment(client, name: str, uri: str) -> str:
    """The experiment's id, created if absent (another writer may create it at the same moment)."""
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(name)
    if exp is None:
        db = _local_file(uri)
        location = (db.parent / "mlartifacts" / name).resolve().as_uri() if db else None  # beside a SQLite store, as it is shared
        try:
            return client.create_experiment(name, artifact_location=location)
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            exp = client.get_experiment_by_name(name)
    if exp.lifecycle_stage == "deleted":  # deleted in the UI: runs cannot be created in it until restored
        client.restore_experiment(exp.experiment_id)
    return exp.experiment_id


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


def _local_file(uri: str) -> Path | None:
    """The SQLite file of a `sqlite:///` store (relative to the working folder with three slashes,
    absolute with four), or None for any other store."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def _lock_file(uri: str) -> Path | None:
    """Where writers of this store, from any checkout, take turns: beside a SQLite file, inside a
    file store's folder; None for a server or a database server (they converge through MLflow)."""
    db = _local_file(uri)
    if db is not None:
        return db.with_name(f"{db.name}.lock")
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file") and not uri.startswith("databricks"):  # bare "databricks" names a workspace, not a folder
        return Path(parsed.path if parsed.scheme else uri) / ".entrobench.lock"
    return None


@contextlib.contextmanager
def _store_lock(uri: str):
    """Serialize the writers of a local store (SQLite file or file store): it is what is shared, so
    the lock sits beside it, not in any one checkout's results folder. Holding it while the first
    writer opens the store also serializes the database's creation."""
    path = _lock_file(uri)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
