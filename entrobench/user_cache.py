"""Small answers kept between runs in the user's cache ($XDG_CACHE_HOME/entrobench, else
~/.cache/entrobench): worth keeping because every snakemake call would otherwise recompute them.
Each file is written whole and then renamed, so a concurrent reader never sees half of one. A
home that cannot be written only costs the recomputation."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def path(name: str) -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "entrobench" / name


def read(name: str) -> Any | None:
    """The kept JSON value, or None when absent or unreadable."""
    try:
        return json.loads(path(name).read_text())
    except (OSError, ValueError):
        return None


def write(name: str, value: Any) -> None:
    kept = path(name)
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        partial = kept.with_name(f".{kept.name}.{os.getpid()}")
        partial.write_text(json.dumps(value))
        partial.replace(kept)
    except OSError:
        pass
