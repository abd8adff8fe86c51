"""What an engine run trains on and how its policy is scored, per dataset: the rows and reward
TRL is given, and the evaluation that turns the final policy and the engine's curves into the
record. Two kinds:

- "addition_chat" (medium scale; tests on a tiny chat model): the generated two-digit addition of
  task.ChatAddition, the prompts drawn from the cell's prompt stream as the suite's trainer draws
  them, the free-form "answer is N" verifier, the held-out evaluation through lm-eval
  (evaluate.py) against the cached start evaluation (the warm-up build);
- a math training set (math_data.TRAIN_SETS; full scale): its staged rows, the math-verify reward
  (math_answers.py), the protocol's benchmarks (benchmarks.py) as the held-out evaluation.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from entrobench.family import CellRun
from entrobench.models.packaged import resolve_model
from entrobench.protocols.rlvr.family import Protocol, Setting
from entrobench.protocols.rlvr.math_data import TRAIN_SETS
from entrobench.record import Skip


@dataclass
class EngineTask:
    rows: list[dict]  # the engine's training set: a "prompt" (text, chat template applied) and the reward's columns
    reward: Callable[..., list[float]]  # TRL's reward function: (prompts, completions, **columns) -> 1.0 / 0.0 each


def model_folder(config: dict, inputs: dict[str, Path], data_root: Path | None) -> str:
    """The policy's Hugging Face folder: a packaged model's converted one, or one under the data root."""
    folder = resolve_model(config["protocol"]["model"], inputs.get("model"), data_root)
    if not (Path(folder) / "config.json").is_file():
        raise Skip(f"no model weights at {folder} (a Hugging Face folder under the data root; see README: RLVR at full scale)")
    return folder


def check_runnable(protocol: Protocol, dataset: str, data_root: Path | None) -> None:
    """Skip, with the reason, a cell this machine cannot run: vLLM rollouts without GPUs or vLLM,
    a math set or benchmark not staged under the data root."""
    if protocol.rollout == "vllm":
        import importlib.util

        if not torch.cuda.is_available() or importlib.util.find_spec("vllm") is None:
            raise Skip("protocol.rollout vllm needs GPUs and vLLM (pip install vllm) on the node that runs the cell")
    if dataset in TRAIN_SETS:
        from entrobench.protocols.rlvr.math_data import jsonl_path

        missing = [n for n in (dataset, *protocol.benchmarks) if data_root is None or not jsonl_path(data_root, n).is_file()]
        if missing:
            raise Skip(f"math data not staged under the data root ({', '.join(missing)}): run "
                       f"`python -m entrobench.protocols.rlvr.math_data --data-root DIR` on a machine with internet")


def engine_task(spec: dict, tokenizer) -> EngineTask:
    protocol = Protocol(**spec["protocol"])
    if spec["dataset"] in TRAIN_SETS:
        from entrobench.protocols.rlvr.math_answers import math_reward
        from entrobench.protocols.rlvr.math_data import read_rows

        rows = [{"prompt": tokenizer.apply_chat_template([{"role": "user", "content": r["prompt"]}], tokenize=False, add_generation_prompt=True),
                 "answer": r["answer"]} for r in read_rows(Path(spec["data_root"]), spec["dataset"])]
        return EngineTask(rows, math_reward)
    task = _chat_task(protocol, tokenizer)
    # the suite's trainer draws prompts_per_step pairs per step from this stream; here all at once
    pairs = task.sample_pairs(protocol.steps * protocol.prompts_per_step, torch.Generator().manual_seed(1000 * spec["seed"] + 1))
    rows = [{"prompt": text, "target": int(t)} for text, t in zip(task.prompt_texts(pairs), task.targets(pairs).tolist())]

    def answer_is(prompts, completions, target, **_) -> list[float]:
        from entrobench.protocols.rlvr.task import check

        return [float(check(task.verifier, c, t)) for c, t in zip(completions, target)]

    return EngineTask(rows, answer_is)


def _chat_task(protocol: Protocol, tokenizer):
    from entrobench.protocols.rlvr.task import ChatAddition

    return ChatAddition(tokenizer, protocol.digits, protocol.held_out, protocol.max_new_tokens)


def evaluate_engine_run(run: CellRun, spec: dict, final: Path, curves: dict[str, list[float]], protocol: Protocol, setting: Setting) -> dict:
    """The record of an engine run: the held-out evaluation of its final policy, the start metrics,
    and the end-of-run numbers of its curves."""
    from entrobench.protocols.rlvr.run import EVAL_SEED_OFFSET, curve_metrics

    seed = spec["seed"] + EVAL_SEED_OFFSET
    t0 = time.perf_counter()
    if spec["dataset"] in TRAIN_SETS:
        from entrobench.protocols.rlvr.benchmarks import evaluate_benchmarks

        final_metrics, samples = evaluate_benchmarks(final, protocol.benchmarks, Path(spec["data_root"]), protocol.max_new_tokens, seed,
                                                     protocol.eval_batch_size, backend=protocol.rollout)
        start, backend = {}, f"lm-eval ({protocol.rollout})"
        fingerprint = f"{spec['dataset']}+{'+'.join(protocol.benchmarks)}"
    else:
        from transformers import AutoTokenizer

        from entrobench.protocols.rlvr.evaluate import eval_backend, evaluate_policy
        from entrobench.protocols.rlvr.model import load_pretrained
        from entrobench.protocols.rlvr.run import WARMUP_FILE

        task = _chat_task(protocol, AutoTokenizer.from_pretrained(final))
        final_metrics, samples = evaluate_policy(load_pretrained(str(final)), task, protocol.eval_samples, setting.temperature, seed,
                                                 protocol.eval_batch_size)
        warm = torch.load(run.inputs["warmup"] / WARMUP_FILE, map_location="cpu", weights_only=True)
        start = {"accuracy_start": warm["eval"]["accuracy"], "pass_at_1_start": warm["eval"]["pass_at_1"]}
        backend = eval_backend()
        fingerprint = f"{spec['dataset']}-{protocol.digits}d-heldout{protocol.held_out}"
    metrics = {**final_metrics, **start, **curve_metrics(curves, protocol.smooth), "eval_s": time.perf_counter() - t0}
    run.progress.done(f"H {metrics['entropy_start']:.3f} -> {metrics['entropy_final']:.3f}")
    return {"metrics": metrics, "curves": curves, "samples": samples, "eval_backend": backend, "data_fingerprint": fingerprint}
