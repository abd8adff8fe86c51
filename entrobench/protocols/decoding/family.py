"""Decoding (truncation sampling): what a decoding card may say (schema), its metrics, and the
cached inputs of a cell (the model's converted folder, the task files).

A cell is one sampler at one temperature (the card's setting) and one seed: every task of the
protocol runs through lm-eval's `simple_evaluate` with the sampler inside Hugging Face `generate`,
and the record holds all metrics. Tasks are data: an lm-eval task YAML and its items file in this
family's tasks/ folder or in the card's `configs/_tasks/` (task_data.py); each gets a metric
`acc_<task>` (without its "eb_" prefix) when its YAML scores `acc`. Imports nothing heavy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from entrobench.family import Build, CellRun, Family
from entrobench.metrics import Metric
from entrobench.models.packaged import PACKAGED_MODELS, model_build
from entrobench.protocols import Dataset
from entrobench.protocols.decoding import task_data

BUILTIN_TASKS = ("eb_capitals", "eb_add2", "eb_gsm8k", "eb_open_ended")  # the default task list (tasks/)


@dataclass(frozen=True)
class Protocol:
    model: str = "smollm2_135m_instruct"  # a packaged model (entrobench/models/packaged.py), a hub id, or a folder under the data root
    dtype: str = "float32"  # weights and compute: float32 on CPU, bfloat16 on GPUs
    tasks: list[str] = field(default_factory=lambda: list(BUILTIN_TASKS))  # task YAMLs of ours (tasks/, configs/_tasks/) or lm-eval's
    # averaged into acc_mean: local tasks (their acc_<task>) and names of hub_metrics
    accuracy_tasks: list[str] = field(default_factory=lambda: ["eb_capitals", "eb_add2"])
    # lm-eval's own tasks, read by name: our metric -> "task:metric,filter" of lm-eval's results,
    # e.g. {acc_gsm8k_strict: "gsm8k_cot:exact_match,strict-match"}: one column per benchmark and filter
    hub_metrics: dict = field(default_factory=dict)
    num_fewshot: dict = field(default_factory=dict)  # task -> few-shot examples, as lm-eval's --num_fewshot for that task alone
    # items per local task (absent or None: all), chosen as its YAML says (task_data.py)
    n_items: dict = field(default_factory=dict)
    # per local task, a cap on generated tokens below the task YAML's max_gen_toks (e.g. GSM8K's 128
    # as a plumbing check on a model at its floor: every extra token is a decode step of the batch)
    max_gen_toks: dict = field(default_factory=dict)
    items_seed: int = 0  # the generator of the arithmetic items and of the GSM8K subset (not the cell's seed)
    batch_size: int = 64  # prompts per generate call
    chat_template: bool = True  # prompts through the model's chat template (instruct models)
    coherence_scorer: str = ""  # model that scores coherence; empty: the evaluated model at T = 1

    def __post_init__(self):
        for key in ("n_items", "max_gen_toks"):
            unknown = [k for k in getattr(self, key) if k not in self.tasks]
            if unknown:
                raise ValueError(f"{key}: {unknown[0]!r} is not in tasks ({', '.join(self.tasks)})")
            small = [k for k, v in getattr(self, key).items() if v is not None and v < 1]
            if small:
                raise ValueError(f"{key}.{small[0]}: expected a count >= 1 or null, got {getattr(self, key)[small[0]]}")
        missing = [t for t in self.accuracy_tasks if t not in self.tasks and t not in self.hub_metrics]
        if missing:
            raise ValueError(f"accuracy_tasks: {missing[0]!r} is neither in tasks nor in hub_metrics")
        for name, where in self.hub_metrics.items():
            task, _, key = str(where).partition(":")
            if task not in self.tasks or not key:
                raise ValueError(f"hub_metrics.{name}: expected 'task:metric,filter' with a task of `tasks`, got {where!r}")
        for task, n in self.num_fewshot.items():
            if task not in self.tasks or not isinstance(n, int) or n < 0:
                raise ValueError(f"num_fewshot.{task}: expected a task of `tasks` and a count >= 0, got {n!r}")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"dtype must be float32, bfloat16 or float16, got {self.dtype!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


@dataclass(frozen=True)
class Setting:
    name: str
    temperature: float = 1.0  # softmax temperature, applied before any truncation

    def __post_init__(self):
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")


DATASETS = {
    "lm_eval_tasks": Dataset(False, "the protocol's lm-eval tasks (capitals, arithmetic, open-ended prompts; GSM8K from the data root)"),
}

METRICS = {
    "acc_mean": Metric("fraction", "higher", "mean accuracy over the protocol's accuracy tasks"),
    "distinct_1": Metric("fraction", "higher", "unique unigrams / unigrams over the open-ended outputs"),
    "distinct_2": Metric("fraction", "higher", "unique bigrams / bigrams over the open-ended outputs"),
    "self_bleu": Metric("fraction", "lower", "mean BLEU of each open-ended output against the others"),
    "coherence": Metric("nats/token", "higher", "mean log-probability of the open-ended outputs under the scorer model", may_be_undefined=True),
    "token_entropy": Metric("nats", "lower", "mean entropy of the model's full next-token distribution (T = 1) over generated tokens"),
    "sampled_entropy": Metric("nats", "lower", "mean entropy of the distribution sampled from (after temperature and truncation)"),
    "kept_tokens": Metric("tokens", "lower", "mean number of tokens the sampler keeps per step"),
    "gen_tokens_per_s": Metric("tokens/s", "higher", "generated tokens per second of generate (all tasks)"),
}


_HERE = Path(__file__).resolve().parent
TASKS_DIR = _HERE / "tasks"


def task_dirs(card) -> list[Path]:
    """Where a card's task names are looked up: its configs folder's _tasks/ first, then ours."""
    return [card.configs_dir / "_tasks", TASKS_DIR]


class Decoding(Family):
    name = "decoding"
    warm_imports = ("entrobench.protocols.decoding.run", "entrobench.lm.harness", "entrobench.lm.sampler_lm", "lm_eval.evaluator",
                    "lm_eval.tasks", "transformers.models.llama.modeling_llama", "transformers.generation.utils")
    Protocol = Protocol
    Setting = Setting
    datasets = DATASETS
    metrics = METRICS

    def metric(self, name: str, scaled=None) -> Metric | None:
        if name in self.metrics or scaled is None:
            return self.metrics.get(name)
        return self._task_metrics(scaled).get(name)

    def metric_names(self, scaled=None) -> list[str]:
        return list(self.metrics) + (list(self._task_metrics(scaled)) if scaled is not None else [])

    def _task_metrics(self, scaled) -> dict[str, Metric]:
        """acc_<task> for each local task of the protocol whose YAML scores `acc`, and the
        protocol's hub_metrics (lm-eval's own tasks, one metric and filter each)."""
        tasks = task_data.find_tasks(scaled.protocol.tasks, task_dirs(scaled.card))
        local = {task_data.accuracy_metric(name): Metric("fraction", "higher", task.description or f"accuracy on task {name}")
                 for name, task in tasks.items() if task.scores_accuracy}
        hub = {name: Metric("fraction", "higher", f"lm-eval's {where.replace(':', ' ', 1)}") for name, where in scaled.protocol.hub_metrics.items()}
        return {**local, **hub}

    def check(self, scaled) -> None:
        """Every task is a local YAML or one of lm-eval's: one line naming the nearest name otherwise."""
        task_data.check_tasks(scaled.protocol.tasks, task_dirs(scaled.card))

    def cell_builds(self, scaled, dataset: str, setting: Setting, seed: int) -> dict[str, Build]:
        """A packaged model's converted folder (hub models are read by the cell itself) and the
        protocol's local tasks, written once with their items (task_data.build_tasks)."""
        protocol = scaled.protocol
        builds = {"model": model_build(protocol.model)} if protocol.model in PACKAGED_MODELS else {}
        tasks = task_data.find_tasks(protocol.tasks, task_dirs(scaled.card))
        if tasks:
            config = task_data.build_config(protocol, tasks)
            sources = sorted({str(f) for t in tasks.values() for f in t.files} | {str(_HERE / "task_data.py")})
            data = sorted({f for t in tasks.values() for f in t.data_root_files})
            builds["tasks"] = Build("decoding", "tasks", "lm_eval_tasks", "entrobench.protocols.decoding.task_data:build_tasks", config,
                                    sources=tuple(sources), data_files=tuple(data))
        return builds

    def cell_sources(self, scaled, dataset: str, setting: Setting) -> list[Path]:
        return [_HERE / "run.py", _HERE.parent.parent / "lm" / "sampler_lm.py", _HERE.parent.parent / "lm" / "harness.py"]

    def run_cell(self, run: CellRun) -> dict:
        from entrobench.protocols.decoding.run import run_cell

        return run_cell(run)

    def draw(self, card, scale, records, out_dir):
        from entrobench.protocols.decoding.plots import draw

        return draw(card, scale, records, out_dir)


FAMILY = Decoding()
