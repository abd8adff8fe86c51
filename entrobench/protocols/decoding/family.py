"""Decoding (truncation sampling): what a decoding card may say (schema), its datasets and metrics.

A cell is one sampler at one temperature (the card's setting) and one seed: every task of the
protocol runs through lm-eval's `simple_evaluate` with the sampler inside Hugging Face `generate`,
and the record holds all metrics. Imports nothing heavy: the Snakefile reads this.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from entrobench.metrics import Metric
from entrobench.models.packaged import PACKAGED_MODELS, model_path
from entrobench.protocols import Dataset

LOCAL_TASKS = ("eb_capitals", "eb_add2", "eb_gsm8k", "eb_open_ended")  # task YAMLs in tasks/


@dataclass(frozen=True)
class Protocol:
    model: str = "smollm2_135m_instruct"  # a packaged model (entrobench/models/packaged.py), a hub id, or a folder under the data root
    dtype: str = "float32"  # weights and compute: float32 on CPU, bfloat16 on GPUs
    tasks: list[str] = field(default_factory=lambda: list(LOCAL_TASKS))  # lm-eval task names (ours: eb_*)
    accuracy_tasks: list[str] = field(default_factory=lambda: ["eb_capitals", "eb_add2"])  # averaged into acc_mean
    # items per local task (None: all); the arithmetic task draws this many pairs without replacement
    n_items: dict = field(default_factory=lambda: {"eb_capitals": None, "eb_add2": 200, "eb_gsm8k": None, "eb_open_ended": None})
    # per local task, a cap on generated tokens below the task YAML's max_gen_toks (e.g. GSM8K's 128
    # as a plumbing check on a model at its floor: every extra token is a decode step of the batch)
    max_gen_toks: dict = field(default_factory=dict)
    items_seed: int = 0  # the generator of the arithmetic items and of the GSM8K subset (not the cell's seed)
    batch_size: int = 64  # prompts per generate call
    chat_template: bool = True  # prompts through the model's chat template (instruct models)
    coherence_scorer: str = ""  # model that scores coherence; empty: the evaluated model at T = 1

    def __post_init__(self):
        for key in ("n_items", "max_gen_toks"):
            unknown = [k for k in getattr(self, key) if k not in LOCAL_TASKS]
            if unknown:
                raise ValueError(f"{key}: unknown task {unknown[0]!r} (expected some of: {', '.join(LOCAL_TASKS)})")
        missing = [t for t in self.accuracy_tasks if t not in self.tasks]
        if missing:
            raise ValueError(f"accuracy_tasks: {missing[0]!r} is not in tasks")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"dtype must be float32, bfloat16 or float16, got {self.dtype!r}")


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
    "acc_capitals": Metric("fraction", "higher", "capitals of well-known countries, zero-shot"),
    "acc_add2": Metric("fraction", "higher", "two-digit addition, one worked example"),
    "acc_gsm8k": Metric("fraction", "higher", "GSM8K test subset, zero-shot (at floor for small models: a plumbing check)"),
    "acc_hub": Metric("fraction", "higher", "mean of the hub tasks' first accuracy-like metric (full scale)"),
    "distinct_1": Metric("fraction", "higher", "unique unigrams / unigrams over the open-ended outputs"),
    "distinct_2": Metric("fraction", "higher", "unique bigrams / bigrams over the open-ended outputs"),
    "self_bleu": Metric("fraction", "lower", "mean BLEU of each open-ended output against the others"),
    "coherence": Metric("nats/token", "higher", "mean log-probability of the open-ended outputs under the scorer model"),
    "token_entropy": Metric("nats", "lower", "mean entropy of the model's full next-token distribution (T = 1) over generated tokens"),
    "sampled_entropy": Metric("nats", "lower", "mean entropy of the distribution sampled from (after temperature and truncation)"),
    "kept_tokens": Metric("tokens", "lower", "mean number of tokens the sampler keeps per step"),
    "gen_tokens_per_s": Metric("tokens/s", "higher", "generated tokens per second of generate (all tasks)"),
}


def columns(protocol: Protocol) -> list[str]:
    return []  # no per-domain columns: the table is one column per metric


_HERE = Path(__file__).resolve().parent


def cell_inputs(protocol: Protocol, setting: Setting, dataset: str, seed: int) -> dict[str, str]:
    """A packaged model is converted once to a Hugging Face folder (workflows/rules/models.smk);
    hub models are read by the cell itself. The model class, the local task YAMLs and their
    scoring are listed too, so editing them reruns the cells that use them."""
    inputs = {"model": model_path(protocol.model)} if protocol.model in PACKAGED_MODELS else {}
    inputs["lm_code"] = str(_HERE / "lm.py")
    inputs["task_scoring"] = str(_HERE / "tasks" / "utils.py")
    inputs.update({f"task_{t}": str(_HERE / "tasks" / f"{t}.yaml") for t in protocol.tasks if t in LOCAL_TASKS})
    return inputs
