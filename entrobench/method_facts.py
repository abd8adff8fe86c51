"""What cards and the DAG need of a method, without importing it: its Params in full (defaults
filled in) for a card's overrides, and what its result is invariant to.

Importing a method imports torch (2 to 3 s), and every snakemake call loads and checks every
card: the no-op rerun of `make smoke` spent 2 of its 5 s there. So the answers are kept in the
user's cache, per method, keyed by the size and modification time of every file of the method's
family folder (methods/<family>/*.py: the method, its base.py and anything they share), read once
per process. Editing one of them, or overrides not seen before, imports the method again. Only Params that
constructed without error are kept: a bad card still fails with its one-line error.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from entrobench import user_cache

_FILE = "method-facts.json"
_kept: dict[str, Any] | None = None
_states: dict[Path, list] = {}  # family folder -> its files' names, sizes and times, read once per process


def params(name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """`dataclasses.asdict(Params(**overrides))` of method `name`."""
    facts, key = _facts(name), _key(overrides)
    if key not in facts["params"]:
        facts["params"][key] = json.loads(json.dumps(dataclasses.asdict(_method(name).Params(**overrides))))
        _save()
    return facts["params"][key]


def check(name: str, overrides: dict[str, Any], build: Callable[[type, dict], Any]) -> None:
    """Run `build(Params, overrides)`, a card's check of them, unless it passed before."""
    facts, key = _facts(name), _key(overrides)
    if key not in facts["checked"]:
        build(_method(name).Params, overrides)  # raises a card's one-line error: nothing kept
        facts["checked"].append(key)
        _save()


def invariant_to(name: str) -> tuple[str, ...]:
    """What the method's result cannot depend on: "seed" and "setting.<field>" names."""
    facts = _facts(name)
    if "invariant_to" not in facts:
        facts["invariant_to"] = list(getattr(_method(name), "INVARIANT_TO", ()))
        _save()
    return tuple(facts["invariant_to"])


def _key(overrides: dict[str, Any]) -> str:
    return json.dumps(overrides, sort_keys=True, default=str)


def _method(name: str) -> type:
    from methods import registry

    return registry.get(name)


def _facts(name: str) -> dict[str, Any]:
    from methods import registry

    global _kept
    if _kept is None:
        kept = user_cache.read(_FILE)
        _kept = kept if isinstance(kept, dict) else {}  # unreadable or another layout: start afresh
    folder = registry.source_file(name).parent
    if folder not in _states:  # once per process: a DAG asks thousands of times
        _states[folder] = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(folder.glob("*.py"))]
    state = _states[folder]
    key = f"{name} {folder}"
    entry = _kept.get(key)
    if not isinstance(entry, dict) or entry.get("state") != state or not {"params", "checked"} <= entry.keys():
        _kept[key] = {"state": state, "params": {}, "checked": []}
    return _kept[key]


def _save() -> None:
    user_cache.write(_FILE, _kept)
