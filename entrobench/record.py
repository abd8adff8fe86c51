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


class Skip(Exception):
    """A cell cannot run here (missing data or weights); the message is the reason the table shows."""


_PACKAGES = ("torch", "numpy", "scipy", "scikit-learn", "pandas", "snakemake", "mlflow", "entrobench")


def write(path: str | Path, record: dict[str, Any]) -> Path:
    """Write atomically (temp file in the same folder, then rename): readers never see half a record."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump({"schema_version": SCHEMA_VERSION, **record}, f, indent=1, sort_keys=True, default=str)
        f.write("\n")
    os.replace(tmp, path)
    return path


def read(path: str | Path) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)


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
    env = os.environ
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    slurm = env.get("SLURM_JOB_ID")
    gpus = env.get("SLURM_JOB_GPUS") if slurm else env.get("CUDA_VISIBLE_DEVICES")
    return {
        "node": env.get("SLURMD_NODENAME") or platform.node(),
        "cpu_s": sum(u.ru_utime + u.ru_stime for u in usage),
        "gpus": len([g for g in (gpus or "").split(",") if g.strip()]),
        "requested": {
            "cpus": _int(env.get("SLURM_CPUS_PER_TASK") or env.get("SLURM_CPUS_ON_NODE")),
            "mem_mb": _int(env.get("SLURM_MEM_PER_NODE")),
            "gpus": _int(env.get("SLURM_GPUS") or env.get("SLURM_GPUS_ON_NODE")),
            "partition": env.get("SLURM_JOB_PARTITION"),
            "account": env.get("SLURM_JOB_ACCOUNT"),
        } if slurm else None,
    }


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


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
