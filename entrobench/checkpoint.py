"""Walltime-safe loops: save every N steps and on SIGTERM, resume from the last save when rerun.

A cluster kills a job at its walltime (SLURM sends SIGTERM, then SIGKILL after KillWait), and
Snakemake reruns it. Any family's training or adaptation loop becomes resumable like this:

    ckpt = Checkpoint(checkpoint.beside(out), every=50, fingerprint=checkpoint.fingerprint(config, __file__))
    with ckpt:                              # SIGTERM now means: finish the step, save, exit 143
        state = ckpt.load()                 # None on a fresh start; else the dict saved last,
        ...                                 #   with torch/numpy/python RNG states restored
        for i in range(ckpt.start, total):  # 0 on a fresh start, last saved step + 1 on resume
            ...one step...
            ckpt.step(i, lambda: {"model": model.state_dict(), "order": order, ...})
    write_final_output(out)
    ckpt.discard()                          # only once the output is safely written

`fingerprint` names what the saved state depends on (config and code): a checkpoint left by a
killed job is not resumed once the card or the code has changed; the loop starts over.
`state_fn` is called only when a save is due, so building the state costs nothing on other
steps. A save is a `torch.save` of {step, state, RNG states} to a temp file renamed over the
checkpoint: a kill at any moment (SIGKILL included) leaves the previous checkpoint or the new
one, never half of one. Resuming is bitwise on CPU when the state holds everything the
remaining steps read: weights, optimizer and scheduler, running sums, the data order.

The state holds data only: tensors, numbers, strings, None, and lists, tuples and dicts of them
(state_dict()s are). It is read back with `torch.load(weights_only=True)`, which builds no other
object and runs no code, so a checkpoint on a shared filesystem cannot run code in the job that
resumes from it. A checkpoint that cannot be read back so (damaged, or from an older version
that pickled objects) is named in one line, deleted, and the loop starts over.
"""
from __future__ import annotations

import hashlib
import inspect
import os
import random
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from entrobench.hashing import content_hash
from entrobench.record import file_mode

EVERY_ENV = "ENTROBENCH_CHECKPOINT_EVERY"  # overrides every loop's save interval (tests use 1)
TERMINATED = 128 + signal.SIGTERM  # the shell's code for death by SIGTERM: Snakemake and SLURM see a failed job


def fingerprint(config: Any, *code_files: str | Path) -> str:
    """A short hash of a job's config and the source files whose code its loop runs."""
    code = [hashlib.sha256(Path(path).read_bytes()).hexdigest() for path in code_files]
    return content_hash({"config": config, "code": code})


def method_code(method_cls: type) -> list[str]:
    """The source files of a method class and of its bases in `methods/`: what its steps run."""
    return sorted({inspect.getsourcefile(c) for c in method_cls.__mro__ if c.__module__.startswith("methods.")})


def beside(out: str | Path) -> Path:
    """Where the checkpoint of the job writing `out` lives: next to it, on the shared filesystem.
    A loop that saves more than one file (an engine's own checkpoint folder) names them from it:
    `<checkpoint>.<suffix>`."""
    out = Path(out)
    return out.with_name(f".{out.name}.ckpt")


def remove_beside(out: str | Path) -> None:
    """Once `out` is safely written: its checkpoint and whatever was saved under its name."""
    path = beside(out)
    for saved in (path, *path.parent.glob(f"{path.name}.*")):
        shutil.rmtree(saved) if saved.is_dir() else saved.unlink(missing_ok=True)


class Checkpoint:
    def __init__(self, path: str | Path | None, every: int = 100, fingerprint: str = "", log=sys.stderr):
        """`path` None: a loop run without checkpoints (nothing saved, SIGTERM left alone)."""
        self.path = Path(path) if path is not None else None
        self.fingerprint = fingerprint
        self.every = int(os.environ.get(EVERY_ENV) or every)
        if self.every < 1:
            raise ValueError(f"checkpoint interval must be >= 1 step, got {self.every} (from {EVERY_ENV} or the caller)")
        self.start = 0  # the first step still to run
        self.log = log
        self._terminate = False
        self._previous_handler = None

    def __enter__(self) -> "Checkpoint":
        if self.path is None:
            return self
        self._previous_handler = signal.signal(signal.SIGTERM, self._on_sigterm)
        return self

    def __exit__(self, *exc) -> None:
        if self.path is None:
            return
        signal.signal(signal.SIGTERM, self._previous_handler or signal.SIG_DFL)
        if self._terminate and exc[0] is None:  # SIGTERM after the last step: the work is done, finish it
            print(f"checkpoint: SIGTERM after the last step, finishing {self.path.name}", file=self.log, flush=True)

    def load(self) -> dict[str, Any] | None:
        """The state saved last (RNG states restored, `start` set past its step), or None.
        Tensors come back on the device they were saved from (a GPU job resumes on a GPU)."""
        if self.path is None or not self.path.is_file():
            return None
        try:
            saved = torch.load(self.path, weights_only=True)
            fingerprint, step, rng, state = saved["fingerprint"], int(saved["step"]), saved["rng"], saved["state"]
            rng_states = (rng["torch"], _numpy_rng(rng["numpy"]), _python_rng(rng["python"]))
        except Exception as err:  # noqa: BLE001 -- damaged, truncated, or pickled objects from before: worthless either way
            cause = f"{type(err).__name__}: {err}".splitlines()[0][:300]
            print(f"checkpoint: {self.path} is unreadable ({cause}); discarding it and starting over", file=self.log, flush=True)
            self.discard()
            return None
        if fingerprint != self.fingerprint:
            print(f"checkpoint: {self.path} was saved by another config or code version; starting over", file=self.log, flush=True)
            return None
        torch.set_rng_state(rng_states[0])
        np.random.set_state(rng_states[1])
        random.setstate(rng_states[2])
        if rng.get("cuda") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.start = step + 1
        print(f"checkpoint: resuming from {self.path} at step {self.start}", file=self.log, flush=True)
        return state

    def step(self, i: int, state_fn: Callable[[], dict[str, Any]]) -> None:
        """Call after step `i` has finished. Saves when due; after a SIGTERM, saves and exits."""
        if self.path is None:
            return
        if self._terminate or (i + 1) % self.every == 0:
            self.save(i, state_fn())
        if self._terminate:
            print(f"checkpoint: SIGTERM, saved step {i} to {self.path}; exiting to be rerun", file=self.log, flush=True)
            raise SystemExit(TERMINATED)

    def save(self, i: int, state: dict[str, Any]) -> None:
        rng = {"torch": torch.get_rng_state(), "numpy": _numpy_rng_tensors(), "python": _python_rng_tensors(),
               "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f"{self.path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, file_mode())  # as records: a rerun by another member of the group can resume it
            with os.fdopen(fd, "wb") as f:
                torch.save({"step": i, "state": state, "rng": rng, "fingerprint": self.fingerprint}, f)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        print(f"checkpoint: saved step {i}", file=self.log, flush=True)

    def discard(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def _on_sigterm(self, signum, frame) -> None:
        self._terminate = True  # acted on at the end of the current step, in step()


# numpy's and Python's generator states as tensors and numbers: weights_only loading refuses numpy
# arrays (they need a pickled global to rebuild), and Python's 625 integers are smaller as one
# tensor. The MT19937 words are 32-bit unsigned, kept in int64 so that none changes sign.


def _numpy_rng_tensors() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    return {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian)}


def _numpy_rng(saved: dict[str, Any]) -> tuple:
    return (saved["kind"], saved["keys"].numpy().astype(np.uint32), saved["pos"], saved["has_gauss"], saved["cached_gaussian"])


def _python_rng_tensors() -> dict[str, Any]:
    version, internal, gauss_next = random.getstate()
    return {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss_next": gauss_next}


def _python_rng(saved: dict[str, Any]) -> tuple:
    return (saved["version"], tuple(saved["internal"].tolist()), saved["gauss_next"])
