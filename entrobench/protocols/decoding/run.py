"""Decoding protocol: one cell through lm-eval.

A cell evaluates every task of the protocol with one sampler at one temperature and one seed,
in one lm-eval `simple_evaluate` call, and returns all metrics: per-task accuracy, diversity
(distinct-n, self-BLEU), coherence (mean log-probability of the open-ended outputs under a fixed
scorer model), mean token entropy and the sampler's kept-set size, plus every sample's output.
"""
from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import torch

from entrobench.family import CellRun
from entrobench.models.packaged import resolve_model
from entrobench.protocols.decoding.family import Protocol, Setting
from entrobench.protocols.decoding.task_data import accuracy_metric, include_paths, read_index

# Seeds vary the sampler's draws only: every cell sees the same few-shot examples, so samplers are
# compared on the same prompts and greedy's result cannot depend on the seed.
FEWSHOT_SEED = 1234


# --- one cell ------------------------------------------------------------------------------------


def run_cell(run: CellRun) -> dict:
    config = run.config
    protocol, setting = Protocol(**config["protocol"]), Setting(**config["setting"])
    pretrained = resolve_model(protocol.model, run.inputs.get("model"), run.data_root)
    from lm_eval.tasks import TaskManager

    from entrobench.lm.harness import evaluate, lm_eval_version
    from entrobench.lm.sampler_lm import SamplerLM

    device = "cuda" if torch.cuda.is_available() else "cpu"
    lm = SamplerLM(
        pretrained=pretrained, sampler=config["method"], sampler_params=config["params"], temperature=setting.temperature,
        seed=config["seed"], batch_size=protocol.batch_size, device=device, dtype=protocol.dtype,
    )
    index = read_index(run.inputs["tasks"]) if "tasks" in run.inputs else {"include": [], "runnable": [], "skipped": {}}
    local = set(index["runnable"]) | set(index["skipped"])
    tasks = [t for t in protocol.tasks if t in index["runnable"] or t not in local]  # lm-eval's own tasks are read from its hub
    run.progress.update(0, len(tasks), f"lm-eval on {', '.join(tasks)} at T {setting.temperature}")
    with tempfile.TemporaryDirectory(prefix="entrobench-tasks-") as scratch:
        include = include_paths(run.inputs["tasks"], Path(scratch)) if "tasks" in run.inputs else []
        manager = TaskManager(include_path=include or None, include_defaults=any(t not in local for t in tasks))
        out = evaluate(lm, tasks, manager, seed=config["seed"], fewshot_seed=FEWSHOT_SEED, chat_template=protocol.chat_template,
                       num_fewshot=protocol.num_fewshot)
    metrics = task_metrics(out["results"], protocol, local)
    metrics.update(lm.token_stats())
    samples = _samples(out.get("samples", {}))
    open_ended = [s for s in samples if s["task"] == "eb_open_ended"]
    if open_ended:
        scorer = lm.model if not protocol.coherence_scorer else _load_scorer(protocol.coherence_scorer, device)
        metrics["coherence"] = coherence(scorer, lm.tokenizer, open_ended)
    run.progress.done(" ".join(f"{k} {v:.3f}" for k, v in metrics.items() if k.startswith(("acc_mean", "distinct_2", "token_entropy"))))
    return {
        "metrics": metrics,
        "curves": {},
        "samples": [{k: v for k, v in s.items() if k != "context"} for s in samples],
        "skipped_tasks": index["skipped"],
        "lm_eval_version": lm_eval_version(),
        "device": device,
        "model": pretrained,
    }


def task_metrics(results: dict, protocol: Protocol, local: set[str]) -> dict[str, float]:
    """lm-eval's results -> our metric names: acc_<task> and the diversity metrics of local tasks,
    the protocol's hub_metrics ("task:metric,filter" of lm-eval's own tasks), and acc_mean over
    the protocol's accuracy tasks."""
    metrics = {}
    for task in local & set(results):
        numbers = {key.split(",")[0]: v for key, v in results[task].items() if isinstance(v, (int, float)) and not key.split(",")[0].endswith("_stderr")}
        if "acc" in numbers:
            metrics[accuracy_metric(task)] = float(numbers["acc"])
        metrics.update({k: float(numbers[k]) for k in ("distinct_1", "distinct_2", "self_bleu") if k in numbers})
    for name, where in protocol.hub_metrics.items():
        task, _, key = where.partition(":")
        if task in results and key in results[task]:
            metrics[name] = float(results[task][key])
    accuracies = [metrics.get(accuracy_metric(t) if t in local else t) for t in protocol.accuracy_tasks]
    if accuracies and None not in accuracies:
        metrics["acc_mean"] = float(np.mean(accuracies))
    return metrics


def _samples(logged: dict) -> list[dict]:
    out = []
    for task, rows in logged.items():
        for row in rows:
            response = row["filtered_resps"][0] if row.get("filtered_resps") else row["resps"][0][0]
            context = row["arguments"][0][0] if isinstance(row["arguments"], list) else row["arguments"]["gen_args_0"]["arg_0"]
            scores = {k: row[k] for k in ("acc",) if k in row}
            out.append({"task": task, "doc_id": row["doc_id"], "target": str(row.get("target", "")), "response": response, "context": context, **scores})
    return out


@torch.no_grad()
def coherence(model, tokenizer, samples: list[dict], batch_size: int = 8) -> float:
    """Mean log-probability per token (nats) of each output given its prompt, averaged over outputs.
    Scored in right-padded batches: padding after a sequence cannot change its causal logits."""
    pairs = [(tokenizer(s["context"], add_special_tokens=False).input_ids, tokenizer(s["response"], add_special_tokens=False).input_ids) for s in samples]
    pairs = [(prompt, answer) for prompt, answer in pairs if answer]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    per_output = []
    for start in range(0, len(pairs), batch_size):
        batch = pairs[start : start + batch_size]
        width = max(len(p) + len(a) for p, a in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, (prompt, answer) in enumerate(batch):
            ids[row, : len(prompt) + len(answer)] = torch.tensor(prompt + answer)
            mask[row, : len(prompt) + len(answer)] = 1
        logp = model(ids.to(model.device), attention_mask=mask.to(model.device)).logits.float().log_softmax(-1).cpu()
        for row, (prompt, answer) in enumerate(batch):
            predicted = logp[row, len(prompt) - 1 : len(prompt) + len(answer) - 1]
            per_output.append(predicted.gather(-1, torch.tensor(answer)[:, None]).mean().item())
    return float(np.mean(per_output)) if per_output else math.nan


def _load_scorer(name: str, device: str):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(name).to(device).eval()
