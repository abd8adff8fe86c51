"""Warm starts (entrobench/warm.py): a job forked from the warm server prints, exits and fails as
the same job started cold; without a server the job starts cold; the server leaves with its run.
Signals and kills in the middle of a cell: tests/workflow/test_resume.py, warm and cold."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from entrobench import warm

REPO = Path(__file__).resolve().parents[2]
CARDS = [str(REPO / "configs" / "pinn" / "causal_wang2022.yaml"), str(REPO / "configs" / "tta" / "tent_wang2021.yaml")]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path, process = warm.start(str(tmp_path_factory.mktemp("warm") / "warm.log"))
    yield path, process
    warm.stop(path, process)
    assert process.poll() is not None and not os.path.exists(path)


def entrobench(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "entrobench", *args], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_a_warm_job_is_the_cold_job(server):
    path, process = server
    cold, warm_ = entrobench("check", *CARDS), entrobench("check", *CARDS, env={warm.ENV: path})
    assert cold.returncode == warm_.returncode == 0, warm_.stderr
    assert warm_.stdout == cold.stdout and "ok " in warm_.stdout
    assert "cold start" not in warm_.stderr
    missing = str(REPO / "configs" / "no_such_card.yaml")
    cold, warm_ = entrobench("check", missing), entrobench("check", missing, env={warm.ENV: path})
    assert cold.returncode == warm_.returncode != 0
    assert warm_.stderr.splitlines()[-1] == cold.stderr.splitlines()[-1]
    assert process.poll() is None, "the server must outlive its jobs"


def test_without_a_server_the_job_starts_cold(tmp_path):
    proc = entrobench("check", CARDS[0], env={warm.ENV: str(tmp_path / "absent")})
    assert proc.returncode == 0 and "ok " in proc.stdout
    assert "cold start" in proc.stderr


def test_jobs_with_several_threads_start_cold(server):
    proc = entrobench("check", CARDS[0], env={warm.ENV: server[0], "OMP_NUM_THREADS": "4"})
    assert proc.returncode == 0 and "ok " in proc.stdout and "warm" not in proc.stderr


def test_the_server_leaves_with_its_run(tmp_path):
    run = subprocess.Popen(["sleep", "60"])
    path = str(tmp_path / "socket")
    server = subprocess.Popen([sys.executable, "-m", "entrobench.warm", "serve", path, "--watch", str(run.pid)])
    try:
        for _ in range(600):
            if os.path.exists(path):
                break
            time.sleep(0.05)
        run.kill()
        run.wait()
        assert server.wait(timeout=60) == 0
    finally:
        server.kill()
