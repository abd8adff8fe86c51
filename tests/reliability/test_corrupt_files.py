"""Damaged files: a truncated or garbled record or checkpoint is named in one line, discarded,
and rebuilt by the next run; records and checkpoints are readable by the group; nothing in the
repository loads tensors with pickle (a checkpoint that would run code runs none)."""
from __future__ import annotations

import ast
import io
import os
from pathlib import Path

import pytest
import torch
from store_helpers import REPO, write_card, write_records

from entrobench import aggregate, checkpoint, record
from entrobench.checkpoint import Checkpoint

DAMAGE = {
    "truncated": lambda data: data[: len(data) // 2],
    "empty": lambda data: b"",
    "garbled": lambda data: bytes(b ^ 0x5A for b in data),
    "not_an_object": lambda data: b"[1, 2, 3]\n",
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_record_is_named_in_one_line_and_moved_aside_so_its_cell_reruns(tmp_path, damage):
    card = write_card(tmp_path)
    results = tmp_path / "results"
    write_records(card, results)
    good = aggregate.load_records(card, "tiny", results)
    path = Path(good[3]["path"])
    original = path.read_bytes()
    path.write_bytes(DAMAGE[damage](original))

    with pytest.raises(record.CorruptRecord) as err:
        record.read(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{path}: not a valid record") and "the next run rebuilds it" in message
    assert not path.exists() and path.with_name(f".{path.name}.corrupt").is_file()  # kept for a look, out of the DAG's way
    path.write_bytes(DAMAGE[damage](original))  # damaged again: now met by the table
    seen = aggregate.load_records(card, "tiny", results)  # tables and MLflow go on, naming the file
    assert [r["status"] for r in seen].count("missing") == 1 and seen[3]["status"] == "missing"
    assert seen[3]["reason"].startswith(f"{path}: not a valid record")
    again = aggregate.load_records(card, "tiny", results)
    assert [r["status"] for r in again].count("missing") == 1 and again[3]["status"] == "missing"  # the DAG reruns this cell

    write_records(card, results)  # the rerun
    assert [r["metrics"] for r in aggregate.load_records(card, "tiny", results)] == [r["metrics"] for r in good]


# SGD with a batch order and noise from all three RNGs: starting over after a discarded checkpoint
# must give the uninterrupted result exactly.
def train(ckpt: Checkpoint, steps: int = 12, stop_at: int | None = None) -> torch.Tensor:
    import random

    import numpy as np

    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    x = torch.randn(32, 4)
    with ckpt:
        saved = ckpt.load()
        if saved is not None:
            model.load_state_dict(saved["model"]), opt.load_state_dict(saved["opt"])
        for i in range(ckpt.start, steps if stop_at is None else stop_at):
            idx = torch.randperm(32)[:8]
            noise = torch.randn(1) + float(np.random.randn()) + random.random()
            loss = (model(x[idx]) - noise).pow(2).mean()
            opt.zero_grad(), loss.backward(), opt.step()
            ckpt.step(i, lambda: {"model": model.state_dict(), "opt": opt.state_dict()})
    return model.weight.detach().clone()


class RunsCode:
    """An old-style checkpoint entry: a pickled object whose loading would run code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def old_pickled_checkpoint(path: Path, tmp_path: Path) -> None:
    torch.save({"step": 3, "state": {"method": RunsCode(tmp_path / "code-ran")}, "rng": {}, "fingerprint": ""}, path)


CHECKPOINT_DAMAGE = {
    "truncated": lambda path, tmp: path.write_bytes(path.read_bytes()[:200]),
    "garbled": lambda path, tmp: path.write_bytes(os.urandom(4096)),
    "pickled_objects": old_pickled_checkpoint,
}


@pytest.mark.parametrize("damage", CHECKPOINT_DAMAGE)
def test_a_damaged_checkpoint_is_named_in_one_line_discarded_and_the_loop_starts_over(tmp_path, damage):
    reference = train(Checkpoint(None))
    path = tmp_path / "loop.ckpt"
    train(Checkpoint(path, every=1), stop_at=5)  # a killed job's checkpoint, at step 4
    CHECKPOINT_DAMAGE[damage](path, tmp_path)

    log = io.StringIO()
    ckpt = Checkpoint(path, every=1, log=log)
    resumed = train(ckpt)
    lines = [line for line in log.getvalue().splitlines() if not line.startswith("checkpoint: saved step")]
    assert len(lines) == 1 and lines[0].startswith(f"checkpoint: {path} is unreadable (") and lines[0].endswith("discarding it and starting over")
    assert torch.equal(resumed, reference)  # rebuilt from step 0, bit for bit
    assert not (tmp_path / "code-ran").exists()  # weights_only: the pickled object was never built


def test_a_checkpoint_holds_only_data_and_resumes_its_rngs(tmp_path):
    path = tmp_path / "c.ckpt"
    train(Checkpoint(path, every=1), stop_at=5)
    saved = torch.load(path, weights_only=True)  # no pickled object anywhere in it
    assert saved["step"] == 4 and set(saved["rng"]) == {"torch", "numpy", "python", "cuda"}
    assert torch.equal(train(Checkpoint(path, every=1)), train(Checkpoint(None)))


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664)])
def test_records_and_checkpoints_are_readable_by_the_group(tmp_path, umask, mode):
    before = os.umask(umask)
    try:
        rec = record.write(tmp_path / "r.json", {"status": record.OK})
        Checkpoint(tmp_path / "c.ckpt").save(0, {"w": torch.zeros(2)})
    finally:
        os.umask(before)
    assert rec.stat().st_mode & 0o777 == mode
    assert (tmp_path / "c.ckpt").stat().st_mode & 0o777 == mode
    assert checkpoint.file_mode() == 0o666 & ~before


def torch_loads(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load" \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch":
            yield node


def test_every_torch_load_in_the_repository_is_weights_only():
    unsafe, seen = [], 0
    for folder in ("entrobench", "methods", "tests", "bench", "scripts"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for call in torch_loads(ast.parse(path.read_text(), str(path))):
                seen += 1
                flag = next((k.value for k in call.keywords if k.arg == "weights_only"), None)
                if not (isinstance(flag, ast.Constant) and flag.value is True):
                    unsafe.append(f"{path.relative_to(REPO)}:{call.lineno}")
    assert seen >= 5 and not unsafe, f"torch.load without weights_only=True: {unsafe}"
