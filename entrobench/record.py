"""Result records: the small JSON file each cell writes and the DAG depends on.

A record is the truth about one cell: what ran (config and its hash), on what (git sha,
package versions, data fingerprint, device), how it went (status: ok, skipped with a reason,
or failed with the error), what it measured (metrics, per-step curves) and what it cost.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
OK, SKIPPED, FAILED = "ok", "skipped", "failed"
# A failed cell writes no record (the DAG must not count it as done): the last line of its log,
# beside where the record would be, says why, and tables show that reason
FAILED_PREFIX = "FAILED: "


class Skip(Exception):
    """A cell cannot run here (missing data or weights); the message is the reason the table shows."""


class CorruptRecord(ValueError):
    """A record file that is not a record (truncated, garbled, not a JSON object with a status).
    The message is one line naming the file; `read` has already moved the file aside, so the
    cell's target is missing and the next run rebuilds it."""

    def __init__(self, path: Path, message: str):
        super().__init__(message)
        self.path = path


_PACKAGES = ("torch", "numpy", "scipy", "scikit-learn", "pandas", "snakemake", "mlflow", "entrobench")


def write(path: str | Path, record: dict[str, Any]) -> Path:
    """Write atomically (temp file in the same folder, then rename): readers never see half a record."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, file_mode())  # mkstemp makes 0600: records are shared with the group, as any file written here
        with os.fdopen(fd, "w") as f:
            json.dump({"schema_version": SCHEMA_VERSION, **record}, f, indent=1, sort_keys=True, default=str)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def failure(path: str | Path) -> str:
    """Why the cell whose record would be at `path` failed, from its log; "" if it did not."""
    log = Path(path).with_suffix(".log")
    if not log.is_file():
        return ""
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith(FAILED_PREFIX)]
    return lines[-1].removeprefix(FAILED_PREFIX) if lines else ""


def file_mode() -> int:
    """The mode open() would give a new file: 0666 less the process's umask (0644 under umask 022).
    Read from /proc (Linux), so no thread ever sees a changed umask; elsewhere set and restored."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def read(path: str | Path) -> dict[str, Any]:
    """The record at `path`. One that cannot be a record (a truncated or garbled file: writes are
    atomic, so only a damaged disk or a hand edit makes one) is moved aside to `.<name>.corrupt`
    and reported as CorruptRecord, one line naming the file: the next run rebuilds the cell."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
        if not isinstance(data, dict) or "status" not in data:
            raise ValueError("not a JSON object with a 'status'")
    except (UnicodeDecodeError, ValueError) as err:  # JSONDecodeError is a ValueError
        cause = f"{type(err).__name__}: {err}".splitlines()[0]
        aside = path.with_name(f".{path.name}.corrupt")
        try:
            os.replace(path, aside)
            fate = f"moved to {aside.name}; the next run rebuilds it"
        except OSError as move_err:
            fate = f"could not move it aside ({move_err.strerror}): delete it and rerun"
        raise CorruptRecord(path, f"{path}: not a valid record ({cause}); {fate}") from None
    return data


def provenance() -> dict[str, Any]:
    return {
        "git_sha": git_sha(),
        "packages": {name: _version(name) for name in _PACKAGES},
        "python": platform.python_version(),
        "host": platform.node(),
        "argv": sys.argv,
    }


def peak_mem_mb() -> float:
    """Peak resident memory of this process (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cost() -> dict[str, Any]:
    """What this process used (CPU seconds of it and its children, GPUs it held) and, under SLURM,
    where it ran and what its job asked for. Wall time and peak memory are top-level fields."""
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    job = slurm_job(os.environ.get("SLURM_JOB_ID"))
    gpus = job["gpus"] if job else len([g for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()])
    return {
        "node": (job or {}).get("node") or platform.node(),
        "cpu_s": sum(u.ru_utime + u.ru_stime for u in usage),
        "gpus": gpus or 0,
        "requested": job,
    }


def slurm_job(job_id: str | None) -> dict[str, Any] | None:
    """What a SLURM job asked for, from `scontrol show job`: the job's environment is no guide (the
    Snakemake plugin strips SLURM_* variables inside jobs). None outside SLURM."""
    if not job_id:
        return None
    try:
        out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {"job_id": job_id}
    fields = dict(item.split("=", 1) for item in out.split() if "=" in item)
    tres = dict(item.split("=", 1) for item in fields.get("TRES", "").split(",") if "=" in item)
    return {
        "job_id": job_id,
        "node": fields.get("NodeList"),
        "partition": fields.get("Partition"),
        "account": fields.get("Account"),
        "time_limit": fields.get("TimeLimit"),
        "cpus": _int(tres.get("cpu")),
        "mem_mb": _mem_mb(tres.get("mem")),
        "gpus": _int(tres.get("gres/gpu")) or 0,
    }


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def _mem_mb(text: str | None) -> int | None:
    """SLURM's memory with its unit (500M, 2G, 1T) in MB."""
    if not text or text[-1] not in "KMGT" or not text[:-1].replace(".", "").isdigit():
        return None
    return round(float(text[:-1]) * 1024 ** "KMGT".index(text[-1]) / 1024)


def git_sha() -> str:
    repo = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo, capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return f"{sha}{'-dirty' if dirty else ''}" if sha else "unknown"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"
