"""lm-eval, as every LM family calls it: one seeded `simple_evaluate`, and what lm-eval knows.

Every random source lm-eval has is seeded by the cell (sampling, numpy, torch), except the few-shot
examples, which a family may fix for all cells so that samplers are compared on the same prompts.
"""
from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path


def evaluate(lm, tasks: list, task_manager, seed: int, fewshot_seed: int, chat_template: bool, num_fewshot: dict | None = None) -> dict:
    """lm-eval's results and logged samples for `tasks` (names or task configs) with model `lm`.
    `num_fewshot` sets few-shot counts per task, as lm-eval's --num_fewshot would for a run of
    that task alone (the others keep their own)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from lm_eval import simple_evaluate

    if num_fewshot:
        from lm_eval.tasks import get_task_dict

        built = get_task_dict(tasks, task_manager)
        for name, n in num_fewshot.items():
            built[name].set_config(key="num_fewshot", value=n)
        tasks = list(built.values())
    return simple_evaluate(
        model=lm, tasks=tasks, task_manager=task_manager, apply_chat_template=chat_template, fewshot_as_multiturn=chat_template,
        log_samples=True, bootstrap_iters=0, random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=fewshot_seed,
    )


def lm_eval_version() -> str:
    """The installed lm-eval's version, for the records."""
    from importlib import metadata

    return metadata.version("lm_eval")


_TASK_LINE = re.compile(r"^task:\s*([^\s#\[]+)", re.MULTILINE)


@cache
def hub_task_names(refresh: bool = False) -> frozenset[str]:
    """The task names lm-eval ships (read from its task YAMLs' `task:` lines, without importing
    lm-eval's task registry, which takes seconds): what a card may name besides local tasks.
    Reading its ~14k YAMLs takes most of a second, and every snakemake call checks the cards, so the
    list is kept per lm-eval install in the user's cache; `refresh` reads the YAMLs again (a name
    not found may be a task added since)."""
    import hashlib
    import importlib.util

    from entrobench import user_cache

    spec = importlib.util.find_spec("lm_eval")
    if spec is None:
        return frozenset()
    root = Path(next(iter(spec.submodule_search_locations))) / "tasks"
    key = hashlib.sha256(f"{lm_eval_version()} {root}".encode()).hexdigest()[:16]
    kept = None if refresh else user_cache.read(f"lm-eval-tasks-{key}.json")
    if kept is not None:
        return frozenset(kept)
    names = frozenset(name for path in root.rglob("*.yaml") for name in _TASK_LINE.findall(path.read_text(errors="ignore")))
    user_cache.write(f"lm-eval-tasks-{key}.json", sorted(names))
    return names
