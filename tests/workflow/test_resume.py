"""Walltime kills: a TTA source-model training job, an adaptation cell and a GRPO cell, killed by SIGTERM or
SIGKILL at a random step and rerun, end bitwise equal to an uninterrupted run, and MLflow holds
one run for the cell, not two. The adaptation cell also runs as a local run's jobs do, forked
from the warm server (entrobench/warm.py): the signal reaches the job through its client, and a
client killed outright takes its job with it."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from entrobench import warm
from entrobench.card import load_card
from entrobench.cells import cell_builds, expand
from entrobench.checkpoint import EVERY_ENV, TERMINATED

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores", "2"]
CARD = {
    "version": 1, "title": "Resume", "arxiv": "0000.00000", "defaults": ["_defaults/tta_corruption"],
    "methods": [{"name": "tent"}],
    "settings": [{"name": "reset_bs16", "batch_size": 16}],  # 24 adaptation steps: room to kill in the middle
    "scales": {"tiny": {"seeds": [0]}},
}
TIMING = {"adapt_s"}  # the one metric that is a wall time, not a result

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def done_once(tmp_path_factory):
    """The card run once, uninterrupted, through the DAG: caches, record, MLflow, table."""
    work = tmp_path_factory.mktemp("resume")
    configs = work / "configs"
    shutil.copytree(REPO / "configs" / "_defaults", configs / "_defaults")
    (configs / "tta").mkdir()
    (configs / "tta" / "resume.yaml").write_text(yaml.safe_dump(CARD))
    snakemake(work)
    card = load_card(configs / "tta" / "resume.yaml")
    cell = expand(card.scale("tiny"))[0]
    return work, card, cell, json.loads((work / cell.record_path()).read_text())


def snakemake(work: Path) -> None:
    proc = subprocess.run([*SNAKEMAKE, "--directory", str(work), "--config", f"configs={work / 'configs'}", "--", "results/resume/tiny/table.md"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]


@pytest.fixture(scope="module")
def warm_server(tmp_path_factory):
    path, server = warm.start(str(tmp_path_factory.mktemp("warm") / "warm.log"))
    yield path
    warm.stop(path, server)


def kill_mid_run(cmd: list[str], cwd: Path, sig: signal.Signals, steps: int, latest_kill: int, output: Path, env: dict | None = None) -> tuple[int, int]:
    """Run `cmd` saving a checkpoint every one of its `steps` steps, send `sig` after a random
    number of saves up to `latest_kill`; return the exit code and that number. The signal is sent
    when the save's line is read, so on a busy machine it can land after the last step, with
    nothing left to interrupt: such a try tests nothing, so its `output` is removed and it runs again.
    The job's stderr is read to its end, so a warm job outliving its killed client has exited too."""
    for _ in range(3):
        kill_after = random.Random().randint(1, latest_kill)
        proc = subprocess.Popen(cmd, cwd=cwd, stderr=subprocess.PIPE, text=True, env={**os.environ, EVERY_ENV: "1", **(env or {})})
        saves, interrupted, finished = 0, False, False
        for line in proc.stderr:
            saves += line.startswith("checkpoint: saved step")
            interrupted |= line.startswith("checkpoint: SIGTERM, saved")
            finished |= line.startswith(f"checkpoint: saved step {steps - 1}\n")
            if saves == kill_after:
                proc.send_signal(sig)
        code = proc.wait(timeout=300)
        if interrupted or not finished:
            return code, kill_after
        remove(output)
    pytest.fail(f"three kills in a row landed after the last of {steps} steps: the machine is too busy to test this")


def remove(output: Path) -> None:
    """A job's output and its checkpoints (`.<name>.ckpt` and temporary files beside it)."""
    for path in (output, *output.parent.glob(f".{output.name}*")):
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def assert_resumed(proc: subprocess.CompletedProcess) -> None:
    """The rerun finished from the checkpoint (read back with weights_only=True), not from scratch:
    starting over would give the same result too, so the result alone does not show it."""
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "checkpoint: resuming from" in proc.stderr and "unreadable" not in proc.stderr, proc.stderr[-3000:]


def expected_code(sig) -> int:
    return TERMINATED if sig == signal.SIGTERM else -signal.SIGKILL


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_source_training_resumes_bitwise(done_once, sig):
    """The source model's build, made again under another results folder (with the same clean
    data copied there), killed and rerun, equals the one the DAG made in one go."""
    work, card, cell, _ = done_once
    builds = cell_builds(card.scale("tiny"), cell)
    other = work / f"other-{sig.name}"
    shutil.copytree(builds["data"].folder(work / "results"), builds["data"].folder(other))
    out = builds["source"].folder(other)
    cmd = [sys.executable, "-m", "entrobench", "build", "--card", str(card.path), "--scale", "tiny", "--results", str(other), "--out", str(out)]
    code, kill_at = kill_mid_run(cmd, work, sig, 76, 30, out)  # 76 steps: 4 epochs of 19 batches
    assert code == expected_code(sig), f"kill after {kill_at} saves"
    assert not out.exists()
    assert_resumed(subprocess.run(cmd, cwd=work, capture_output=True, text=True))
    reference = torch.load(builds["source"].folder(work / "results") / "model.pt", weights_only=True)
    resumed = torch.load(out / "model.pt", weights_only=True)
    assert resumed["train_loss_curve"] == reference["train_loss_curve"]
    assert all(torch.equal(resumed["state_dict"][k], v) for k, v in reference["state_dict"].items()), f"killed after {kill_at} saves"
    assert not list(out.parent.glob(f".{out.name}*")), "checkpoint or temporary folder left after the model was written"


@pytest.mark.parametrize("start", ["cold", "warm"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_adaptation_cell_resumes_bitwise_with_one_mlflow_run(done_once, request, sig, start):
    work, card, cell, reference = done_once
    record_path = work / cell.record_path()
    remove(record_path)
    env = {warm.ENV: request.getfixturevalue("warm_server")} if start == "warm" else {}
    cmd = [sys.executable, "-m", "entrobench", "run-cell", "--card", str(card.path), "--scale", "tiny", "--cell", cell.key, "--out", str(record_path)]
    code, kill_at = kill_mid_run(cmd, work, sig, 24, 12, record_path, env)
    assert code == expected_code(sig), f"kill after {kill_at} saves"
    assert not record_path.exists()
    rerun = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env={**os.environ, **env})
    assert_resumed(rerun)
    assert "cold start" not in rerun.stderr
    resumed = json.loads(record_path.read_text())
    assert resumed["status"] == "ok", resumed.get("reason")
    drop = lambda metrics: {k: v for k, v in metrics.items() if k not in TIMING}  # noqa: E731
    assert drop(resumed["metrics"]) == drop(reference["metrics"]), f"killed after {kill_at} saves"
    assert resumed["curves"] == reference["curves"]
    assert not list(record_path.parent.glob(".*.ckpt*"))

    snakemake(work)  # the table and the MLflow import pick up the resumed record
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{work / 'results' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("resume").experiment_id])
    assert [r.data.tags["entrobench.cell"] for r in runs] == [f"tiny/{cell.key}"]


@pytest.fixture(scope="module")
def rlvr_warmup(tmp_path_factory):
    """The RLVR card's tiny warm-up, trained once under a scratch results folder, and the card."""
    card = load_card(REPO / "configs" / "rlvr" / "clipcov_cui2025.yaml")
    work = tmp_path_factory.mktemp("rlvr-resume")
    cell = next(c for c in expand(card.scale("tiny")) if c.method == "clip_cov")  # its token choices draw from a generator too
    warmup = cell_builds(card.scale("tiny"), cell)["warmup"]
    cmd = [sys.executable, "-m", "entrobench", "build", "--card", str(card.path), "--scale", "tiny", "--results", str(work / "results"),
           "--out", str(warmup.folder(work / "results"))]
    assert subprocess.run(cmd, cwd=REPO, capture_output=True).returncode == 0
    return work, card, cell


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_grpo_cell_resumes_bitwise(rlvr_warmup, sig):
    work, card, cell = rlvr_warmup

    def cmd(out: Path) -> list[str]:
        return [sys.executable, "-m", "entrobench", "run-cell", "--card", str(card.path), "--scale", "tiny", "--cell", cell.key,
                "--results", str(work / "results"), "--out", str(out)]

    reference = work / f"straight-{sig.name}.json"
    assert subprocess.run(cmd(reference), cwd=REPO, capture_output=True).returncode == 0
    resumed = work / f"resumed-{sig.name}.json"
    code, kill_at = kill_mid_run(cmd(resumed), REPO, sig, 6, 4, resumed)
    assert code == expected_code(sig), f"kill after {kill_at} saves"
    assert not resumed.exists()
    assert_resumed(subprocess.run(cmd(resumed), cwd=REPO, capture_output=True, text=True))
    ours, theirs = json.loads(resumed.read_text()), json.loads(reference.read_text())
    timing = {"train_s", "eval_s", "rollout_s", "update_s"}
    assert {k: v for k, v in ours["metrics"].items() if k not in timing} == {k: v for k, v in theirs["metrics"].items() if k not in timing}
    assert {k: v for k, v in ours["curves"].items() if k not in timing} == {k: v for k, v in theirs["curves"].items() if k not in timing}
    assert not list(work.glob(".*.ckpt*")), "checkpoint left after the record was written"
