"""The paper's evaluation (arXiv 2505.22617, Sec. 4.3 and Table 2): seven math benchmarks, each an
lm-eval task made from tasks/eb_math.yaml and the items math_data.py stages.

"During evaluation, we set the rollout temperature to 0.6 for AIME and AMC, while using greedy
decoding for all other test sets" and "For AIME and AMC, the results are avg.@32" (Table 2's
caption); "The max generation length is 8192". So: 32 samples per problem at T 0.6 for AIME24,
AIME25 and AMC, one greedy answer for MATH-500, OMNI-MATH, OlympiadBench and Minerva; a problem
scores the share of its answers that math-verify accepts (avg@k), a benchmark the mean over its
problems, and `avg_acc` the plain mean of the benchmarks, as the paper's Avg. column. The top-p
is not stated: 1 here. The prompt is the training instruction (math_data.INSTRUCTION) in the
model's chat template, as the authors' recipes feed prompts.

lm-eval ships aime24, aime25 and minerva_math500 reading the same hub data (math_data.EVAL_SETS);
they are not run as shipped because each differs from the paper's protocol: a "Question: ...
Answer:" prompt the policy was not trained on, greedy decoding and 32768 new tokens for AIME, a
Minerva 4-shot prompt for MATH-500, and an exact-match scorer that reads only the first of k
samples. The data, staged once, is the same; the tasks are this file's.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent / "tasks" / "eb_math.yaml"
MAX_NEW_TOKENS = 8192  # the paper's max generation length (Sec. 4.3); the protocol's max_new_tokens sets it


@dataclass(frozen=True)
class Benchmark:
    column: str  # the paper's Table 2 column
    samples: int  # k answers per problem, scored as their mean accuracy (avg@k)
    temperature: float  # 0: greedy
    lm_eval_task: str = ""  # lm-eval's own task reading the same hub data, where it has one

    @property
    def description(self) -> str:
        how = f"avg@{self.samples} at T {self.temperature:g}" if self.temperature > 0 else "greedy"
        return f"accuracy on {self.column} ({how}, math-verify on the final answer; Table 2 column {self.column})"


BENCHMARKS = {
    "aime24": Benchmark("AIME24", 32, 0.6, "aime24"),
    "aime25": Benchmark("AIME25", 32, 0.6, "aime25"),
    "amc23": Benchmark("AMC", 32, 0.6),
    "math500": Benchmark("MATH-500", 1, 0.0, "minerva_math500"),
    "omni_math": Benchmark("OMNI-MATH", 1, 0.0),
    "olympiadbench": Benchmark("OlympiadBench", 1, 0.0),
    "minerva": Benchmark("Minerva", 1, 0.0),
}


def task_config(name: str, data_root: Path, max_new_tokens: int, samples: int | None = None) -> dict:
    """The lm-eval task config of benchmark `name` with its staged items (`samples` overrides k, for tests)."""
    from lm_eval.tasks._yaml_loader import load_yaml  # lm-eval's own loader: resolves !function

    from entrobench.protocols.rlvr.math_data import jsonl_path

    bench = BENCHMARKS[name]
    k = samples or bench.samples
    config = load_yaml(TEMPLATE, resolve_func=True)
    config.update(task=f"eb_math_{name}", repeats=k, dataset_kwargs={"data_files": {"test": str(jsonl_path(data_root, name).resolve())}})
    config["filter_list"] = [{"name": "all_samples", "filter": [{"function": "take_first_k", "k": k}]}]
    config["generation_kwargs"] = {**config["generation_kwargs"], "max_gen_toks": max_new_tokens,
                                   "do_sample": bench.temperature > 0, "temperature": bench.temperature}
    return config


def evaluate_benchmarks(folder: Path, names: list[str], data_root: Path, max_new_tokens: int, seed: int, batch_size: int,
                        backend: str = "hf", samples: int | None = None) -> tuple[dict[str, float], list[dict]]:
    """acc_<name> for each benchmark, avg_acc (their mean) and the first logged samples of each.
    Benchmarks run grouped by temperature: one lm-eval call per sampling setting. `backend`
    "vllm" runs lm-eval's vLLM model (GPUs), "hf" the shared SamplerLM (transformers)."""
    from lm_eval.tasks import TaskManager

    from entrobench.lm.harness import evaluate

    metrics, kept = {}, []
    for temperature in sorted({BENCHMARKS[n].temperature for n in names}):
        group = [n for n in names if BENCHMARKS[n].temperature == temperature]
        configs = [task_config(n, data_root, max_new_tokens, samples) for n in group]
        lm = _language_model(folder, temperature, seed, batch_size, backend, max_new_tokens)
        out = evaluate(lm, configs, TaskManager(include_defaults=False), seed=seed, fewshot_seed=seed, chat_template=True)
        for name, config in zip(group, configs):
            metrics[f"acc_{name}"] = float(out["results"][config["task"]]["acc,all_samples"])
            kept += [{"task": config["task"], "doc_id": row["doc_id"], "target": row["doc"]["answer"], "responses": row["filtered_resps"][0]}
                     for row in out["samples"][config["task"]][:KEPT_SAMPLES]]
    metrics["avg_acc"] = sum(metrics[f"acc_{n}"] for n in names) / len(names)
    return metrics, kept


KEPT_SAMPLES = 8  # logged answers kept per benchmark in the record


def _language_model(folder: Path, temperature: float, seed: int, batch_size: int, backend: str, max_new_tokens: int):
    if backend == "vllm":  # lm-eval's vLLM model honours each task's generation_kwargs
        import torch
        from lm_eval.models.vllm_causallms import VLLM

        return VLLM(pretrained=str(folder), tensor_parallel_size=max(1, torch.cuda.device_count()), seed=seed,
                    max_model_len=max_new_tokens + 2048, batch_size="auto")
    from entrobench.lm.sampler_lm import SamplerLM

    sampler = "temperature" if temperature > 0 else "greedy"
    return SamplerLM(pretrained=str(folder), sampler=sampler, temperature=temperature or 1.0, seed=seed, batch_size=batch_size,
                     device="cuda" if _cuda() else "cpu", dtype="auto")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
