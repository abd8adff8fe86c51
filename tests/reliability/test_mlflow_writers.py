"""Sixteen checkouts import the same 30 records into one MLflow store at once, each from its own
process and results folder: into one SQLite file that does not exist yet, and into one loopback
`mlflow server`. Every cell must end with exactly one complete run holding its record: 0 lost,
0 duplicated, no writer crashed, one table run. (Before the fix: 15 of 16 writers crashed and 24
of 30 runs were lost on SQLite; 77 runs for 30 cells on a server.)"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from store_helpers import (
    audit,
    start_writer,
    summaries,
    wait_for,
    write_card,
    write_records,
)

WRITERS = 16

pytestmark = pytest.mark.slow


def run_writers(tmp_path: Path, uri: str):
    card = write_card(tmp_path)
    template = tmp_path / "template"
    write_records(card, template)
    checkouts = []
    for i in range(WRITERS):
        shutil.copytree(template, tmp_path / f"checkout{i}" / "results")
        checkouts.append(tmp_path / f"checkout{i}" / "results")
    start = tmp_path / "start"
    procs = [start_writer(card, results, start, uri) for results in checkouts]
    for proc in procs:
        wait_for(proc, "ready")  # every writer has paid its imports: they all start together
    start.touch()
    done = summaries(procs, timeout=900)
    return card, template, done


def test_sixteen_writers_into_one_new_sqlite_file(tmp_path):
    uri = f"sqlite:///{tmp_path / 'shared' / 'mlflow.db'}"
    card, template, done = run_writers(tmp_path, uri)
    result = audit(uri, card, template)
    print(result.line(f"SQLite, {WRITERS} writers"))
    assert (result.lost, result.duplicated, result.incomplete, result.table_runs) == (0, 0, 0, 1), result
    assert sum(s["created"] for s in done) == 30  # the lock serializes them: the first creates, the rest find them unchanged


def test_sixteen_writers_into_one_server(tmp_path, mlflow_server):
    card, template, done = run_writers(tmp_path, mlflow_server)
    result = audit(mlflow_server, card, template)
    print(result.line(f"server, {WRITERS} writers"))
    assert (result.lost, result.duplicated, result.incomplete, result.table_runs) == (0, 0, 0, 1), result
    assert len(done) == WRITERS
