"""The local lm-eval tasks' data, written for one cell: YAMLs from tasks/ with absolute data paths.

lm-eval resolves relative `data_files` against the working directory, so the YAMLs in the repo
say DATA_DIR and this fills it in, in a scratch folder with the data files beside them. Items are
fixed by the protocol (its `items_seed`), never by the cell's seed: every sampler and seed sees
the same questions.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np

TASKS_DIR = Path(__file__).resolve().parent / "tasks"


def write_tasks(protocol, data_root: Path | None, out: Path) -> tuple[list[str], dict[str, str]]:
    """Write the protocol's local tasks under `out`. Returns (task names that can run, {task: why not})."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(TASKS_DIR / "utils.py", out / "utils.py")
    runnable, skipped = [], {}
    for task in protocol.tasks:
        yaml_path = TASKS_DIR / f"{task}.yaml"
        if not yaml_path.is_file():
            runnable.append(task)  # one of lm-eval's own tasks (hub data)
            continue
        n = protocol.n_items.get(task)
        try:
            rows = _ITEMS[task](n, protocol.items_seed, data_root)
        except FileNotFoundError as err:
            skipped[task] = str(err)
            continue
        _write_jsonl(out / f"{task.removeprefix('eb_')}.jsonl", rows)
        if task in _EXAMPLES:
            _write_jsonl(out / f"{task.removeprefix('eb_')}_example.jsonl", _EXAMPLES[task])
        text = yaml_path.read_text().replace("DATA_DIR", str(out.resolve()))
        if task in protocol.max_gen_toks:
            text = re.sub(r"max_gen_toks: \d+", f"max_gen_toks: {protocol.max_gen_toks[task]}", text)
        (out / yaml_path.name).write_text(text)
        runnable.append(task)
    return runnable, skipped


def capitals(n: int | None, seed: int, data_root: Path | None) -> list[dict]:
    return _read_jsonl(TASKS_DIR / "capitals.jsonl")[:n]


def add2(n: int | None, seed: int, data_root: Path | None) -> list[dict]:
    """Two-digit addends (10..99), pairs drawn without replacement."""
    example = (_EXAMPLES["eb_add2"][0]["a"], _EXAMPLES["eb_add2"][0]["b"])
    pairs = [(a, b) for a in range(10, 100) for b in range(10, 100) if (a, b) != example]
    picks = np.random.default_rng(seed).choice(len(pairs), size=min(n or len(pairs), len(pairs)), replace=False)
    return [{"a": pairs[i][0], "b": pairs[i][1], "target": pairs[i][0] + pairs[i][1]} for i in picks]


def gsm8k(n: int | None, seed: int, data_root: Path | None) -> list[dict]:
    path = Path(data_root or "") / "gsm8k" / "test.jsonl"
    if data_root is None or not path.is_file():
        raise FileNotFoundError(f"GSM8K test set not found at {path} (see README: Data)")
    rows = _read_jsonl(path)
    order = np.random.default_rng(seed).permutation(len(rows))[: n or len(rows)]
    return [{"question": rows[i]["question"], "target": rows[i]["answer"].split("####")[-1].strip().replace(",", "")} for i in order]


def open_ended(n: int | None, seed: int, data_root: Path | None) -> list[dict]:
    return _read_jsonl(TASKS_DIR / "open_ended.jsonl")[:n]


# the worked example shown before every item (add2 never draws its pair)
_EXAMPLES = {"eb_add2": [{"a": 34, "b": 51, "target": 85}]}
_ITEMS = {"eb_capitals": capitals, "eb_add2": add2, "eb_gsm8k": gsm8k, "eb_open_ended": open_ended}


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
