"""entrobench/checkpoint.py on a small real loop run in a subprocess: a kill by SIGTERM or SIGKILL
at a random step, then a rerun, ends with the same weights, bitwise, as an uninterrupted run."""
from __future__ import annotations

import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from entrobench import checkpoint
from entrobench.checkpoint import TERMINATED, Checkpoint

REPO = Path(__file__).resolve().parents[2]
STEPS = 60

# SGD on random data, with the batch order and a noise draw from all three RNGs at every step:
# resuming is bitwise only if weights, optimizer, data order and RNG states all come back.
LOOP = """
import random, sys, numpy as np, torch
from entrobench.checkpoint import Checkpoint
torch.set_num_threads(1)
torch.manual_seed(0); np.random.seed(0); random.seed(0)
x, y = torch.randn(256, 8), torch.randn(256, 1)
model = torch.nn.Linear(8, 1)
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
order = None
with Checkpoint(sys.argv[1], every=int(sys.argv[2])) as ckpt:
    saved = ckpt.load()
    if saved is not None:
        model.load_state_dict(saved["model"]); opt.load_state_dict(saved["opt"]); order = saved["order"]
    for i in range(ckpt.start, {steps}):
        if i % 8 == 0:
            order = torch.randperm(256)
        idx = order[(i % 8) * 32 : (i % 8 + 1) * 32]
        noise = 1e-3 * (torch.randn(1) + float(np.random.randn()) + random.random())
        loss = ((model(x[idx]) - y[idx]) ** 2).mean() + noise.sum()
        opt.zero_grad(); loss.backward(); opt.step()
        ckpt.step(i, lambda: {{"model": model.state_dict(), "opt": opt.state_dict(), "order": order}})
torch.save(model.state_dict(), sys.argv[3])
ckpt.discard()
""".format(steps=STEPS)


def run_loop(tmp_path: Path, out: Path, every: int = 1, kill_after: int | None = None, sig=signal.SIGTERM) -> int:
    """Run the loop; with `kill_after`, send `sig` once that many checkpoints have been saved."""
    script = tmp_path / "loop.py"
    script.write_text(LOOP)
    cmd = [sys.executable, str(script), str(tmp_path / "loop.ckpt"), str(every), str(out)]
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True)
    saves = 0
    for line in proc.stderr:
        saves += line.startswith("checkpoint: saved step")
        if kill_after is not None and saves == kill_after:
            proc.send_signal(sig)
            kill_after = None
    return proc.wait(timeout=120)


def test_save_is_atomic_and_load_restores_state_and_rngs(tmp_path):
    path = tmp_path / "c.ckpt"
    ckpt = Checkpoint(path, every=2)
    torch.manual_seed(3)
    ckpt.step(0, lambda: pytest.fail("not due: state_fn must not be called"))
    ckpt.step(1, lambda: {"w": torch.arange(3)})
    expected_next = torch.rand(2)
    assert [p.name for p in tmp_path.iterdir()] == ["c.ckpt"]  # no temp file left behind
    torch.manual_seed(99)
    again = Checkpoint(path)
    assert torch.equal(again.load()["w"], torch.arange(3)) and again.start == 2
    assert torch.equal(torch.rand(2), expected_next)
    again.discard()
    assert not path.exists() and Checkpoint(path).load() is None


def test_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(checkpoint.EVERY_ENV, "7")
    assert Checkpoint("x", every=100).every == 7
    monkeypatch.setenv(checkpoint.EVERY_ENV, "0")
    with pytest.raises(ValueError, match=checkpoint.EVERY_ENV):
        Checkpoint("x")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_killed_loop_resumes_to_the_uninterrupted_result(tmp_path, sig):
    reference, resumed = tmp_path / "reference.pt", tmp_path / "resumed.pt"
    assert run_loop(tmp_path, reference, every=5) == 0
    kill_at = random.Random().randint(1, STEPS // 2)  # any step: the result must not depend on it
    code = run_loop(tmp_path, resumed, kill_after=kill_at, sig=sig)
    assert code == (TERMINATED if sig == signal.SIGTERM else -signal.SIGKILL), f"killed after {kill_at} saves"
    assert (tmp_path / "loop.ckpt").is_file() and not resumed.exists()
    assert run_loop(tmp_path, resumed, every=5) == 0
    a, b = torch.load(reference, weights_only=True), torch.load(resumed, weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a), f"weights differ after a kill at save {kill_at}"
    assert not (tmp_path / "loop.ckpt").exists()  # discarded once the output is written


def test_a_checkpoint_from_another_config_or_code_is_not_resumed(tmp_path):
    code = tmp_path / "loop_code.py"
    code.write_text("x = 1\n")
    path = tmp_path / "c.ckpt"
    Checkpoint(path, fingerprint=checkpoint.fingerprint({"lr": 0.1}, code)).save(4, {"w": 1})
    assert Checkpoint(path, fingerprint=checkpoint.fingerprint({"lr": 0.1}, code)).load() == {"w": 1}
    assert Checkpoint(path, fingerprint=checkpoint.fingerprint({"lr": 0.2}, code)).load() is None
    code.write_text("x = 2\n")
    resumed = Checkpoint(path, fingerprint=checkpoint.fingerprint({"lr": 0.1}, code))
    assert resumed.load() is None and resumed.start == 0
