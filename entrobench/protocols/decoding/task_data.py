"""Local lm-eval tasks as data: a task is `<name>.yaml` (an lm-eval task config) with its items
file(s) beside it, in this family's tasks/ folder or in a card's `configs/_tasks/`. No code.

    # configs/_tasks/eb_antonyms.yaml
    task: eb_antonyms
    dataset_path: json
    dataset_kwargs:
      data_files: {test: antonyms.jsonl}        # beside the YAML; or DATA_ROOT/<path> under the data root
    test_split: test
    output_type: generate_until
    doc_to_text: "The opposite of {{word}} is"
    doc_to_target: "{{answers[0]}}"
    process_results: !function utils.score_names   # a utils.py beside the YAML, if it uses one
    metric_list: [{metric: acc, aggregation: mean, higher_is_better: true}]
    metadata: {version: 1.0, description: "antonyms, zero-shot", select: first}

A task scoring `acc` gets the metric `acc_<name>` (without "eb_"). The protocol's `n_items`
takes that many items of the test split: the first ones (`metadata.select: first`), else drawn
without replacement by the protocol's `items_seed` (never the cell's seed: every sampler and seed
sees the same questions). The `tasks` build (build_tasks) writes the chosen items and the YAMLs
once per protocol; every cell of the protocol reads that folder (include_paths).
"""
from __future__ import annotations

import difflib
import functools
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from entrobench.family import BuildRun

DATA_ROOT = "DATA_ROOT/"  # prefix of an items path under the data root
BUILD_DIR = "BUILD_DIR"  # in a built YAML: the build's folder, wherever it is when a cell reads it
INDEX = "tasks.json"  # in the build's folder: include paths, runnable and skipped tasks


@dataclass(frozen=True)
class LocalTask:
    name: str
    yaml: Path
    config: dict  # the YAML as data (!function tags kept as their text)
    data_files: dict[str, str]  # split -> path as written in the YAML

    @property
    def description(self) -> str:
        return str((self.config.get("metadata") or {}).get("description", ""))

    @property
    def select(self) -> str:
        return str((self.config.get("metadata") or {}).get("select", "random"))

    @property
    def scores_accuracy(self) -> bool:
        return any(m.get("metric") == "acc" for m in self.config.get("metric_list") or [])

    @property
    def data_root_files(self) -> list[str]:
        return [p.removeprefix(DATA_ROOT) for p in self.data_files.values() if p.startswith(DATA_ROOT)]

    @property
    def files(self) -> list[Path]:
        """What the task is made of in the repo: its YAML, items beside it, the Python it calls."""
        here = self.yaml.parent
        items = [here / p for p in self.data_files.values() if not p.startswith(DATA_ROOT)]
        return [self.yaml, *items, *sorted(here.glob("*.py"))]


def accuracy_metric(task: str) -> str:
    return f"acc_{task.removeprefix('eb_')}"


class _TaskLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml where present: read on every DAG start
    """lm-eval's YAML, read as data: `!function utils.f` stays the text "utils.f"."""


_TaskLoader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


@functools.lru_cache(maxsize=256)  # a DAG asks for each card's tasks once per cell; an edited file is read again
def _read_task(path: Path, mtime_ns: int, size: int) -> dict:
    try:
        return yaml.load(path.read_text(), Loader=_TaskLoader)  # noqa: S506 (a (C)SafeLoader subclass)
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None


def find_tasks(names: list[str], dirs: list[Path]) -> dict[str, LocalTask]:
    """The local tasks among `names` (the first folder holding `<name>.yaml` wins); others are lm-eval's."""
    found = {}
    for name in names:
        path = next((d / f"{name}.yaml" for d in dirs if (d / f"{name}.yaml").is_file()), None)
        if path is None:
            continue
        stat = path.stat()
        config = _read_task(path, stat.st_mtime_ns, stat.st_size)
        if not isinstance(config, dict) or config.get("task") != name:
            raise ValueError(f"{path}: expected a task config with `task: {name}` (the file's name)")
        files = ((config.get("dataset_kwargs") or {}).get("data_files")) or {}
        if not isinstance(files, dict) or not files:
            raise ValueError(f"{path}: dataset_kwargs.data_files: expected a mapping split -> items file")
        found[name] = LocalTask(name, path, config, {str(k): str(v) for k, v in files.items()})
    return found


def check_tasks(names: list[str], dirs: list[Path]) -> None:
    """Raise ValueError (one line) for a task that is neither local nor one of lm-eval's."""
    from entrobench.lm.harness import hub_task_names

    local = find_tasks(names, dirs)
    for name in names:
        if name not in local and name not in hub_task_names() and name not in hub_task_names(refresh=True):
            known = sorted({p.stem for d in dirs if d.is_dir() for p in d.glob("*.yaml")})
            close = difflib.get_close_matches(name, known + sorted(hub_task_names()), n=1)
            hint = f"did you mean {close[0]}?" if close else f"local tasks: {', '.join(known)}"
            raise ValueError(f"protocol.tasks: unknown task {name!r} ({hint}; a task of your own is {name}.yaml "
                             f"with its items in {dirs[0]})")
    for task in local.values():
        missing = [p for p in task.data_files.values() if not p.startswith(DATA_ROOT) and not (task.yaml.parent / p).is_file()]
        if missing:
            raise ValueError(f"{task.yaml}: dataset_kwargs.data_files: no file {task.yaml.parent / missing[0]}")


def build_config(protocol, tasks: dict[str, LocalTask]) -> dict:
    """What the tasks build depends on: the local tasks' files and how many items of each."""
    return {"tasks": {name: str(task.yaml) for name, task in tasks.items()}, "n_items": protocol.n_items,
            "max_gen_toks": protocol.max_gen_toks, "items_seed": protocol.items_seed}


def build_tasks(run: BuildRun) -> dict:
    """Write each local task's YAML and chosen items under `run.out`, one folder per source folder
    (a folder's utils.py serves its own YAMLs). A task whose items live under a data root that
    lacks them is left out, with the reason: cells run the others and the record says why."""
    config, out = run.config, run.out
    folders, runnable, skipped = {}, [], {}
    for name, yaml_path in config["tasks"].items():
        yaml_path = Path(yaml_path)
        task = find_tasks([name], [yaml_path.parent])[name]
        try:
            rows = {split: _read_items(path, yaml_path.parent, run.data_root) for split, path in task.data_files.items()}
        except FileNotFoundError as err:
            skipped[name] = str(err)
            continue
        folder = folders.setdefault(yaml_path.parent, out / f"dir{len(folders)}")
        if not folder.exists():
            folder.mkdir()
            for py in yaml_path.parent.glob("*.py"):
                shutil.copy(py, folder / py.name)
        text = yaml_path.read_text()
        test_split = str(task.config.get("test_split", "test"))
        for split, path in task.data_files.items():
            chosen = rows[split]
            if split == test_split:
                chosen = _choose(chosen, config["n_items"].get(name), task.select, config["items_seed"])
            target = folder / f"{name}.{split}.jsonl"
            target.write_text("".join(json.dumps(r) + "\n" for r in chosen))
            entry = re.compile(rf"(?<![\w.-])({re.escape(split)}:\s*)[\"']?{re.escape(path)}[\"']?(?=\s*[,}}\n]|\s*$)")
            here = f"{BUILD_DIR}/{target.relative_to(out)}"
            text, found = entry.subn(lambda m: m.group(1) + json.dumps(here), text, count=1)
            if not found:
                raise ValueError(f"{yaml_path}: could not find `{split}: {path}` to point it at the written items")
        if name in config["max_gen_toks"]:
            text = re.sub(r"max_gen_toks: \d+", f"max_gen_toks: {config['max_gen_toks'][name]}", text)
        (folder / yaml_path.name).write_text(text)
        runnable.append(name)
    index = {"include": sorted(p.name for p in folders.values()), "runnable": runnable, "skipped": skipped}
    (out / INDEX).write_text(json.dumps(index, indent=1) + "\n")
    return index


def read_index(folder: Path) -> dict:
    return json.loads((folder / INDEX).read_text())


def include_paths(folder: Path, scratch: Path) -> list[str]:
    """The built tasks as lm-eval reads them: copies of their YAMLs (and the Python they call) in
    `scratch`, with the items' paths made absolute. lm-eval resolves relative paths against the
    working directory, and the build folder may have moved since it was made."""
    paths = []
    for name in read_index(folder)["include"]:
        target = scratch / name
        target.mkdir(parents=True)
        for file in (folder / name).iterdir():
            if file.suffix == ".yaml":
                (target / file.name).write_text(file.read_text().replace(f'"{BUILD_DIR}/', f'"{folder.resolve()}/'))
            elif file.suffix == ".py":
                shutil.copy(file, target / file.name)
        paths.append(str(target))
    return paths


def _read_items(path: str, here: Path, data_root: Path | None) -> list[dict]:
    if path.startswith(DATA_ROOT):
        file = Path(data_root or "") / path.removeprefix(DATA_ROOT)
        if data_root is None or not file.is_file():
            raise FileNotFoundError(f"items not found at {file} (see README: Data)")
    else:
        file = here / path
    return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]


def _choose(rows: list[dict], n: int | None, select: str, seed: int) -> list[dict]:
    if n is None or n >= len(rows):
        return rows
    if select == "first":
        return rows[:n]
    picks = np.random.default_rng(seed).choice(len(rows), size=n, replace=False)
    return [rows[i] for i in picks]
