"""Held-out evaluation of a policy through lm-eval: greedy accuracy, pass@1..k and maj@k.

The policy is saved as a Hugging Face folder (hf_folder.py) and evaluated by lm-eval's HF model
with the decoding samplers (entrobench/lm/sampler_lm.py's SamplerLM): `greedy` for the accuracy,
`temperature` at the rollout temperature for k samples per prompt, each seeded, in one
`simple_evaluate` call per sampler. The tasks are tasks/*.yaml, scored by tasks/utils.py with
the functions below. The per-step greedy-accuracy curve stays in the trainer (a torch loop on 64
prompts every step; lm-eval's set-up per call would cost more than the step).
"""
from __future__ import annotations

import json
import tempfile
from collections import Counter
from math import comb
from pathlib import Path

import torch

from entrobench.protocols.rlvr.hf_folder import save_policy

TASKS_DIR = Path(__file__).resolve().parent / "tasks"
SAMPLED_TASK, GREEDY_TASK = "eb_rlvr_addition", "eb_rlvr_addition_greedy"
KEPT_SAMPLES = 64  # per task, in the record: enough to read the policy's answers, small enough to keep records small


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al. 2021, arXiv 2107.03374, Eq. 1):
    1 - C(n - c, k) / C(n, k)."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per prompt, got {n}")
    return 1.0 - comb(n - c, k) / comb(n, k)


def majority_correct(answers: list[str], correct: list[bool]) -> bool:
    """maj@k: is the most frequent answer among the k samples correct? Ties go to the answer
    seen first, so the verdict does not depend on anything but the samples."""
    top = Counter(answers).most_common(1)[0][0]
    return correct[answers.index(top)]


def k_values(k: int) -> list[int]:
    """The pass@k columns for k samples per prompt: powers of two up to k, and k itself."""
    return sorted({2**i for i in range(k.bit_length()) if 2**i <= k} | {k})


def eval_backend() -> str:
    from entrobench.lm.harness import lm_eval_version

    return f"lm-eval {lm_eval_version()}"


def evaluate_policy(model: torch.nn.Module, task, k: int, temperature: float, seed: int, batch_size: int,
                    pairs: torch.Tensor | None = None) -> tuple[dict[str, float], list[dict]]:
    """Metrics on the held-out prompts (all of them unless `pairs` is given), k samples each at
    `temperature`, and the first KEPT_SAMPLES logged samples of each task."""
    pairs = task.eval_pairs if pairs is None else pairs
    with tempfile.TemporaryDirectory(prefix="entrobench-rlvr-eval-") as scratch:
        folder = save_policy(model, task.hf_tokenizer(), Path(scratch) / "policy")
        data = Path(scratch) / "held_out.jsonl"
        docs = [{"prompt": p, "target": t, "verifier": task.verifier} for p, t in zip(task.prompt_texts(pairs), task.targets(pairs).tolist())]
        data.write_text("".join(json.dumps(doc) + "\n" for doc in docs))
        device = str(next(model.parameters()).device)  # lm-eval loads the saved copy where the policy lives
        sampled = _run(folder, _task_config(SAMPLED_TASK, data, task.max_new_tokens, k), "temperature", temperature, seed, batch_size, device)
        greedy = _run(folder, _task_config(GREEDY_TASK, data, task.max_new_tokens, 1), "greedy", 1.0, seed, batch_size, device)
    metrics = {"accuracy": greedy["metrics"]["accuracy"]}
    metrics.update({f"pass_at_{kk}": sampled["metrics"][f"pass_at_{kk}"] for kk in k_values(k)})
    metrics[f"maj_at_{k}"] = sampled["metrics"][f"maj_at_{k}"]
    return metrics, greedy["samples"] + sampled["samples"]


def _task_config(name: str, data: Path, max_new_tokens: int, repeats: int) -> dict:
    """The task YAML with this evaluation's data file, repeats and metric list."""
    from lm_eval.tasks._yaml_loader import load_yaml  # lm-eval's own loader: resolves include and !function

    config = load_yaml(TASKS_DIR / f"{name}.yaml", resolve_func=True)
    config.pop("include", None)
    config["dataset_kwargs"] = {"data_files": {"test": str(data.resolve())}}
    config["generation_kwargs"] = {**config["generation_kwargs"], "max_gen_toks": max_new_tokens}
    if repeats > 1:
        config["repeats"] = repeats
        config["filter_list"] = [{"name": "all_samples", "filter": [{"function": "take_first_k", "k": repeats}]}]
        names = [f"pass_at_{kk}" for kk in k_values(repeats)] + [f"maj_at_{repeats}"]
        config["metric_list"] = [{"metric": m, "aggregation": "mean", "higher_is_better": True} for m in names]
    return config


def _run(folder: Path, config: dict, sampler: str, temperature: float, seed: int, batch_size: int, device: str) -> dict:
    """One simple_evaluate call: the task's aggregated metrics and its first logged samples."""
    from lm_eval.tasks import TaskManager

    from entrobench.lm.harness import evaluate
    from entrobench.lm.sampler_lm import SamplerLM

    lm = SamplerLM(pretrained=str(folder), sampler=sampler, temperature=temperature, seed=seed, batch_size=batch_size, device=device, dtype="float32")
    out = evaluate(lm, [config], TaskManager(include_defaults=False), seed=seed, fewshot_seed=seed, chat_template=False)
    name = config["task"]
    metrics = {key.split(",")[0]: float(v) for key, v in out["results"][name].items() if isinstance(v, (int, float)) and "_stderr" not in key}
    samples = []
    for row in out["samples"][name][:KEPT_SAMPLES]:
        responses = row["filtered_resps"][0]  # k answers (take_first_k), or the one answer (take_first)
        samples.append({"task": name, "doc_id": row["doc_id"], "prompt": row["arguments"][0][0], "target": row["doc"]["target"],
                        "responses": responses if isinstance(responses, list) else [responses]})
    return {"metrics": metrics, "samples": samples}
