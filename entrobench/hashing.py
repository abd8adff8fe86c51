"""Stable content hashes of configs: the same config always gives the same cache path."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any


def content_hash(obj: Any) -> str:
    """12 hex characters of sha256 over canonical JSON (dataclasses included)."""
    text = json.dumps(obj, sort_keys=True, default=_jsonable, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _jsonable(obj: Any):
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-able: {type(obj).__name__}")
