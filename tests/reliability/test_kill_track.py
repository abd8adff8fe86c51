"""kill -9 of a `track` import at a random moment, then the same import rerun: no empty,
incomplete or duplicated run survives, and every cell's run holds its record. Each trial changes
every record first, so the killed import is replacing runs, not finding them unchanged. On the
local SQLite store (file lock) and on a loopback server (no lock: the claim rule alone)."""
from __future__ import annotations

import random
import signal
import time

import pytest
from store_helpers import audit, start_writer, wait_for, write_card, write_records

from entrobench import aggregate, tracking

TRIALS = 5

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "server"])
def store(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'results' / 'mlflow.db'}"
    return request.getfixturevalue("mlflow_server")


def test_kill_9_during_an_import_then_a_rerun_leaves_one_complete_run_per_cell(tmp_path, store, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    card, results, start = write_card(tmp_path), tmp_path / "results", tmp_path / "start"
    start.touch()
    for error in (0.0, 1.0):  # the first import creates the store and every run; the second, timed, replaces them all
        write_records(card, results, error=error)
        writer = start_writer(card, results, start, store)
        wait_for(writer, "importing")
        t0 = time.perf_counter()
        assert writer.wait(timeout=600) == 0, writer.stderr.read()[-3000:]
        duration = time.perf_counter() - t0  # as long as the killed imports take: kills land anywhere in them
        writer.stdout.close(), writer.stderr.close()

    rng, survived, mid_import, failures = random.Random(), 0, 0, []
    for trial in range(1, TRIALS + 1):
        write_records(card, results, error=100.0 * trial)  # every cell changed: the killed import replaces runs
        writer = start_writer(card, results, start, store)
        wait_for(writer, "importing")
        delay = rng.uniform(0.0, duration)
        time.sleep(delay)
        mid_import += writer.poll() is None
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=60)
        writer.stdout.close(), writer.stderr.close()
        tracking.track(card, "tiny", aggregate.load_records(card, "tiny", results), results, attachments=[results / "plot.png"])
        result = audit(store, card, results)
        ok = (result.lost, result.duplicated, result.incomplete, result.table_runs) == (0, 0, 0, 1)
        survived += ok
        if not ok:
            failures.append(f"trial {trial}, killed {delay:.2f} s into the import: {result.line('after the rerun')}")
    print(f"kill -9 of track ({store.split(':')[0]}): {survived}/{TRIALS} survived with the same command, "
          f"{mid_import} kills landed mid-import (import takes {duration:.1f} s)")
    assert survived == TRIALS, "\n".join(failures)
    assert mid_import >= 1, "no kill landed inside an import: the trials tested nothing"
