"""RLVR protocol: the cached supervised warm-up, and one cell = one GRPO run of one method
from that checkpoint, with per-step curves, a held-out evaluation through lm-eval and the
entropy law fit.

The protocol measures; the method (methods/rlvr/*) is only the loss. Everything is seeded:
the warm-up by a fixed seed (one checkpoint shared by every seed and method), the GRPO run by
the cell's seed, the final evaluation by a seed of its own.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from entrobench import checkpoint
from entrobench.checkpoint import Checkpoint
from entrobench.family import BuildRun, CellRun
from entrobench.models.packaged import resolve_model
from entrobench.protocols.rlvr import model as model_module
from entrobench.protocols.rlvr import trainer as trainer_module
from entrobench.protocols.rlvr.evaluate import eval_backend, evaluate_policy
from entrobench.protocols.rlvr.family import SCRATCH, Protocol, Setting, unavailable, warmup_config
from entrobench.protocols.rlvr.law import fit_law, moving_average
from entrobench.protocols.rlvr.model import build_policy, load_pretrained
from entrobench.protocols.rlvr.task import Addition, ChatAddition
from entrobench.protocols.rlvr.trainer import GRPOTrainer
from entrobench.protocols.rlvr.warmup import warmup
from entrobench.record import Skip

EVAL_SEED_OFFSET = 7919  # the evaluation's sampling seed is the cell's seed plus this
CHECKPOINT_EVERY = 50  # GRPO steps between saves (a save is one torch.save of a ~100k-parameter state; SIGTERM saves at once)
WARMUP_FILE = "warmup.pt"  # in the warm-up build's folder


def _model_folder(model: str, inputs: dict[str, Path], data_root: Path | None) -> str:
    """A packaged model's converted folder (the "model" input), a folder under the data root, or a hub id."""
    return resolve_model(model, inputs.get("model"), data_root)


def _task(config: dict, inputs: dict[str, Path], data_root: Path | None = None):
    if config["model"] == SCRATCH:
        return Addition(config["digits"], config["held_out"])
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(_model_folder(config["model"], inputs, data_root))
    return ChatAddition(tokenizer, config["digits"], config["held_out"], config["max_new_tokens"])


def _policy(config: dict, task, inputs: dict[str, Path], data_root: Path | None = None) -> torch.nn.Module:
    if config["model"] == SCRATCH:
        return build_policy(config["n_layer"], config["d_model"], config["n_head"], task.prompt_len + task.answer_len, seed=0)
    return load_pretrained(_model_folder(config["model"], inputs, data_root))


# ---------------------------------------------------------------- warm-up (cached by the DAG)


def train_warmup(run: BuildRun) -> dict:
    """The supervised warm-up of the from-scratch decoder, or for a pretrained model the model as
    it is; either way evaluated on the held-out prompts (every cell's start metrics)."""
    config, progress = run.config, run.progress
    reason = unavailable(config["model"], config["dataset"])
    if reason:
        raise Skip(reason)
    task = _task(config, run.inputs, run.data_root)
    torch.manual_seed(0)
    policy = _policy(config, task, run.inputs, run.data_root)
    if config["model"] == SCRATCH:
        meta = warmup(policy, task, config, progress)
        meta["state_dict"] = policy.state_dict()
    else:
        meta = {"steps": 0, "pass1": math.nan, "note": "pretrained: no supervised warm-up, RL starts from the model's folder"}
    progress.update(meta["steps"], meta["steps"], f"lm-eval on {len(task.eval_pairs)} held-out prompts x {config['eval_samples']} samples")
    # at T 1 whatever the card's rollout temperature: the checkpoint is shared by cards
    meta["eval"], _ = evaluate_policy(policy, task, config["eval_samples"], 1.0, EVAL_SEED_OFFSET, config["eval_batch_size"])
    meta["eval_backend"] = eval_backend()
    meta["n_params"] = sum(p.numel() for p in policy.parameters())
    progress.done(f"{meta['steps']} steps, sampled pass@1 {meta['pass1']:.3f}, held-out {meta['eval']}")
    torch.save(meta, run.out / WARMUP_FILE)
    return {k: v for k, v in meta.items() if k not in ("state_dict", "history")}


# ---------------------------------------------------------------- one cell


def run_cell(run: CellRun) -> dict:
    """One GRPO run from the warm-up checkpoint. With `run.checkpoint_path`, the trainer's whole
    state (policy, optimizer, lr schedule, generators, curves) is saved every CHECKPOINT_EVERY
    steps and on SIGTERM, and a rerun continues from it bit for bit."""
    config, inputs, data_root, method_cls, progress = run.config, run.inputs, run.data_root, run.method_cls, run.progress
    protocol, setting = Protocol(**config["protocol"]), Setting(**config["setting"])
    if protocol.engine != "ours":  # an existing distributed engine with the same loss modules (engine.py)
        from entrobench.protocols.rlvr.engine import run_cell as run_on_engine

        return run_on_engine(run)
    reason = unavailable(protocol.model, config["dataset"])
    if reason:
        raise Skip(reason)
    start = torch.load(inputs["warmup"] / WARMUP_FILE, map_location="cpu", weights_only=True)
    warnings = [w for w in [method_cls.schedule_warning(protocol.ppo_epochs, protocol.minibatches)] if w]
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)

    seed = config["seed"]
    torch.manual_seed(seed)
    wcfg = warmup_config(protocol, config["dataset"])
    task = _task(wcfg, inputs, data_root)
    policy, reference = _policy(wcfg, task, inputs, data_root), _policy(wcfg, task, inputs, data_root)
    if "state_dict" in start:  # the from-scratch decoder's warm-up; a pretrained policy starts as loaded
        policy.load_state_dict(start["state_dict"])
        reference.load_state_dict(start["state_dict"])
    method = method_cls(method_cls.Params(**config["params"]), generator=torch.Generator().manual_seed(1000 * seed + 3))
    trainer = GRPOTrainer(policy, reference, task, method, protocol, setting, seed, method.generator)

    t0 = time.perf_counter()
    code = [__file__, trainer_module.__file__, model_module.__file__, *checkpoint.method_code(method_cls)]
    with Checkpoint(run.checkpoint_path, CHECKPOINT_EVERY, checkpoint.fingerprint(config, *code)) as ckpt:
        saved = ckpt.load()
        if saved is not None:
            trainer.load_state_dict(saved)
            progress.update(trainer.step, protocol.steps, "resumed from checkpoint")
        trainer.train(progress, after_step=lambda: ckpt.step(trainer.step - 1, trainer.state_dict))
    train_s = time.perf_counter() - t0  # this attempt only, after a resume
    progress.update(protocol.steps, protocol.steps, f"lm-eval on {len(task.eval_pairs)} held-out prompts x {protocol.eval_samples} samples")
    t0 = time.perf_counter()
    final, samples = evaluate_policy(policy, task, protocol.eval_samples, setting.temperature, seed + EVAL_SEED_OFFSET, protocol.eval_batch_size)
    eval_s = time.perf_counter() - t0
    metrics = {
        **final,
        "accuracy_start": start["eval"]["accuracy"],
        "pass_at_1_start": start["eval"]["pass_at_1"],
        **curve_metrics(trainer.curves, protocol.smooth),
        "train_s": train_s,
        "eval_s": eval_s,
    }
    progress.done(f"H {metrics['entropy_start']:.3f} -> {metrics['entropy_final']:.3f}, pass@1 {metrics['pass_at_1']:.3f}, law R2 {metrics['law_r2']:.2f}")
    return {
        "metrics": metrics,
        "curves": trainer.curves,
        "warnings": warnings,
        "samples": samples,
        "eval_backend": eval_backend(),
        "warmup": {k: v for k, v in start.items() if k not in ("state_dict",)},
        "device": "cpu",
        "data_fingerprint": f"{config['dataset']}-{protocol.digits}d-heldout{protocol.held_out}",
    }


def curve_metrics(curves: dict[str, list[float]], smooth: int) -> dict[str, float]:
    """End-of-run numbers from the per-step curves: entropy start/end/ratio, when it fell below
    10% of its start, reward start/end, and the law R = -a exp(H) + b fitted on smoothed steps."""
    entropy, reward = np.asarray(curves["entropy"]), np.asarray(curves["reward"])
    tail = slice(-smooth, None)
    h0, h_end = float(entropy[0]), float(entropy[tail].mean())
    smoothed = moving_average(entropy, smooth)
    below = np.nonzero(smoothed < 0.1 * h0)[0]
    # smoothed[i] averages steps i .. i + smooth - 1: it is known at step i + smooth - 1
    steps_to_10pct = float(below[0] + min(smooth, len(entropy)) - 1) if len(below) else math.nan
    fit, raw = fit_law(entropy, reward, smooth), fit_law(entropy, reward, 1)
    return {
        "entropy_start": h0,
        "entropy_final": h_end,
        "entropy_ratio": h_end / h0 if h0 > 0 else math.nan,
        "steps_to_10pct": steps_to_10pct,
        "reward_start": float(reward[0]),
        "reward_final": float(reward[tail].mean()),
        "law_a": fit.a,
        "law_b": fit.b,
        "law_r2": fit.r2,
        "law_r2_raw": raw.r2,
        "law_ceiling": fit.ceiling,
        "selected_frac": float(np.mean(curves["selected_frac"])),
        "clip_frac": float(np.mean(curves["clip_frac"])),
        "kl_ref_final": float(np.mean(curves["kl_ref"][tail])),
    }
