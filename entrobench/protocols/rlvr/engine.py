"""RLVR on a maintained distributed engine: TRL's GRPOTrainer (pinned, pyproject `[bench]`/`[engine]`)
with the suite's loss modules (methods/rlvr/*) as the only source of the math.

Why TRL and not verl: verl is the authors' engine (Clip-Cov and KL-Cov sit in its policy-loss
registry), but it runs on Ray workers with CUDA/NPU devices only; with no GPU it stops at "Total
available GPUs 0 is less than total desired GPUs" (verl-project/verl#3266), so no CI machine
could run the full-scale code path. TRL's GRPOTrainer runs on one CPU process as on a node of
GPUs (accelerate: DDP, FSDP2 or DeepSpeed ZeRO; rollouts by transformers `generate` or vLLM
colocated with training), and a subclass replaces its loss without touching its rollout,
reward, advantage, optimizer, checkpoint or logging code.

One cell = one job: `run_cell` writes a spec, and trains either in this process (one device) or
under `accelerate launch` on every GPU the job was given (the card's `resources.gpu`), with an
accelerate config made from TRL's own (accelerate_configs/*.yaml) and the protocol's sharding and
precision. The engine's checkpoints (model, optimizer, scheduler, RNG, data position, log
history) go to a folder beside the cell's record every `CHECKPOINT_EVERY` GRPO steps and on
SIGTERM (at the end of the current GRPO step, all ranks agreeing), after which the job exits 143
and the rerun resumes from the last one. The engine's logs (its reward, completion length and
grad norm; our loss module's entropy, covariance, clipped and selected shares, KL) become the
record's per-step curves, read back from the trainer's log history, which checkpoints keep.

How the protocol maps onto TRL, per process p of W (B = prompts_per_step x group_size):
    per_device_train_batch_size = B / (minibatches x micro_batches x W)
    gradient_accumulation_steps = micro_batches         (the loss unit: one micro-batch)
    steps_per_generation        = minibatches x micro_batches
    num_iterations              = ppo_epochs
    max_steps                   = steps x minibatches x ppo_epochs   (optimizer steps)
Differences from the suite's own trainer (trainer.py), each TRL's: advantages divide by
(group std + 1e-4), not 1e-6; a generation batch is shuffled before it is cut into minibatches
(not whole groups); the lr ramp is HF's constant_with_warmup (0 at the first update, not 1/ramp);
the per-step entropy is the training policy's on each micro-batch (the sampling policy's on the
first minibatch), averaged over the step's micro-batches.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import trl
import yaml
from transformers import PrinterCallback, TrainerCallback
from transformers.trainer_utils import get_last_checkpoint

from entrobench import checkpoint
from entrobench.family import CellRun
from entrobench.progress import Progress
from entrobench.protocols.rlvr.family import Protocol, Setting
from entrobench.protocols.rlvr.model import token_logp
from methods import registry
from methods.rlvr.base import PolicyBatch, PolicyLoss

CHECKPOINT_EVERY = 50  # GRPO steps between the engine's own checkpoints ($ENTROBENCH_CHECKPOINT_EVERY overrides)
ENGINE_DIR = ".engine"  # suffix of the checkpoint folder beside the record: <record>.ckpt.engine/
FINAL = "final"  # the trained policy, a Hugging Face folder, in the checkpoint folder
RESULT = "engine_result.json"  # rank 0's curves and run facts, in the checkpoint folder
FINGERPRINT = "fingerprint.txt"  # what the checkpoints in the folder were made by (config and code)
LOG_PREFIX = "eb/"  # our loss module's logs in the engine's metrics
ROLLOUT_PREFIX = "eb_rollout_"  # a method's rollout features, carried in the engine's inputs
# per-step curves read from the log history: our name -> the engine's log key
ENGINE_CURVES = {"reward": "reward", "response_len": "completions/mean_length", "grad_norm": "grad_norm",
                 "rollout_s": f"{LOG_PREFIX}rollout_s", "step_s": "step_time"}
LOSS_CURVES = ("entropy", "cov_mean", "clip_frac", "selected_frac", "kl_ref", "ppo_kl", "pg_loss")


# ---------------------------------------------------------------- the trainer


class PolicyLossTrainer(trl.GRPOTrainer):
    """TRL's GRPOTrainer whose loss is a `PolicyLoss`: TRL samples, scores, normalizes and steps;
    the loss of each micro-batch is ours, unchanged, divided by the accumulation steps (TRL's
    convention for a loss it scales itself)."""

    def __init__(self, *args, policy_loss: PolicyLoss, **kwargs):
        self.policy_loss = policy_loss
        self.needs = policy_loss.requires()
        super().__init__(*args, **kwargs)

    def _generate_and_score_completions(self, inputs):
        t0 = time.perf_counter()
        out = super()._generate_and_score_completions(inputs)
        if "rollout_logits" in self.needs:  # features of the sampling policy, before any update of this batch
            chunk, length = self.args.per_device_train_batch_size, out["completion_ids"].size(1)
            with torch.no_grad():
                parts = [self.policy_loss.rollout_features(self._policy_logits(self.model, *_sequences(out, slice(i, i + chunk)), length),
                                                           out["completion_ids"][i : i + chunk])
                         for i in range(0, len(out["completion_ids"]), chunk)]
            out.update({ROLLOUT_PREFIX + name: torch.cat([p[name] for p in parts]) for name in parts[0]})
        self._metrics["train"][f"{LOG_PREFIX}rollout_s"].append(time.perf_counter() - t0)
        return out

    def _policy_logits(self, model, input_ids, attention_mask, length: int) -> torch.Tensor:
        """(B, L, V) logits of the completion's L tokens at the sampling temperature, float32."""
        logits = model(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=length + 1, use_cache=False).logits
        return logits[:, :-1].float() / self.temperature

    def _compute_loss(self, model, inputs):
        input_ids, attention_mask = _sequences(inputs)
        completion_ids, mask = inputs["completion_ids"], inputs["completion_mask"].bool()
        length = completion_ids.size(1)
        logits = entropy = None
        if "logits" in self.needs:  # a variant that differentiates through the whole distribution
            logits = self._policy_logits(model, input_ids, attention_mask, length)
            logp = token_logp(logits, completion_ids)
        else:  # the engine's memory-lean head: log-probs and entropy without the (B, L, V) logits
            logp, entropy, _ = self._get_per_token_logps_and_entropies(model, input_ids, attention_mask, length, compute_entropy=True)
            entropy = entropy.detach()
        old = inputs.get("old_per_token_logps")
        batch = PolicyBatch(
            logp=logp, logp_old=logp.detach() if old is None else old, advantages=inputs["advantages"], mask=mask,
            logp_ref=inputs.get("ref_per_token_logps"), logits=logits, entropy=entropy,
            rollout={k.removeprefix(ROLLOUT_PREFIX): v for k, v in inputs.items() if k.startswith(ROLLOUT_PREFIX)})
        out = self.policy_loss.loss(batch)
        for key, value in out.logs.items():
            self._metrics["train"][LOG_PREFIX + key].append(value)
        return out.loss / self.current_gradient_accumulation_steps


def _sequences(inputs: dict, part: slice = slice(None)) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompt + completion ids and attention mask of (a slice of) an engine batch."""
    return (torch.cat([inputs["prompt_ids"][part], inputs["completion_ids"][part]], 1),
            torch.cat([inputs["prompt_mask"][part], inputs["completion_mask"][part]], 1))


class Walltime(TrainerCallback):
    """SIGTERM (a walltime, `scancel`) -> save the engine's checkpoint at the end of the current GRPO
    step and stop. The flag is max-reduced over ranks every optimizer step, so all ranks save at
    the same step (a save is collective); it is acted on at GRPO-step boundaries only, since the
    rest of a generation batch is not part of a checkpoint."""

    def __init__(self, updates_per_step: int):
        self.updates_per_step = updates_per_step
        self.terminate = False
        self.trainer = None
        self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)

    def close(self) -> None:
        """Give SIGTERM back (after training: a SIGTERM during the evaluation ends the job at once)."""
        signal.signal(signal.SIGTERM, self._previous or signal.SIG_DFL)

    def _on_sigterm(self, signum, frame) -> None:
        self.terminate = True

    def on_step_end(self, args, state, control, **kwargs):
        flag = torch.tensor(float(self.terminate), device=self.trainer.accelerator.device)
        self.terminate = bool(self.trainer.accelerator.reduce(flag, reduction="sum").item())
        if self.terminate and state.global_step % self.updates_per_step == 0:
            control.should_save = True
            control.should_training_stop = True
        return control


class Report(TrainerCallback):
    """Progress lines, one per GRPO step."""

    def __init__(self, progress: Progress, updates_per_step: int, steps: int):
        self.progress, self.updates_per_step, self.steps = progress, updates_per_step, steps

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "reward" in logs and state.is_world_process_zero:
            step = state.global_step // self.updates_per_step
            self.progress.update(step, self.steps, f"H {logs.get(LOG_PREFIX + 'entropy', math.nan):.3f} R {logs['reward']:.3f}")


# ---------------------------------------------------------------- one training run (every process)


def engine_args(protocol: Protocol, setting: Setting, seed: int, out: Path, world: int, needs: frozenset[str]) -> dict:
    """GRPOConfig's arguments for this protocol on `world` processes (see the module docstring)."""
    p = protocol
    sequences = p.prompts_per_step * setting.group_size
    per_device, rest = divmod(sequences, p.minibatches * p.micro_batches * world)
    if rest or per_device == 0:
        raise ValueError(f"{sequences} sequences per step do not split into {p.minibatches} minibatches x {p.micro_batches} "
                         f"micro-batches on {world} processes: change prompts_per_step, minibatches or micro_batches")
    updates = p.minibatches * p.ppo_epochs
    save_every = int(os.environ.get(checkpoint.EVERY_ENV) or CHECKPOINT_EVERY)
    return dict(
        output_dir=str(out), seed=seed, data_seed=seed, report_to="none", disable_tqdm=True,
        per_device_train_batch_size=per_device, gradient_accumulation_steps=p.micro_batches,
        steps_per_generation=p.minibatches * p.micro_batches, num_iterations=p.ppo_epochs,
        max_steps=p.steps * updates, num_generations=setting.group_size, max_completion_length=p.max_new_tokens,
        temperature=setting.temperature, top_p=1.0, top_k=0,
        # the optimizer and schedule of the suite's trainer
        learning_rate=p.lr, adam_beta1=p.beta1, adam_beta2=p.beta2, weight_decay=p.weight_decay, max_grad_norm=p.grad_clip,
        optim="adamw_torch", lr_scheduler_type="constant_with_warmup", warmup_steps=p.lr_warmup_updates,
        # TRL's beta only switches its reference model on: the KL weight, if any, is our loss module's
        beta=1.0 if "logp_ref" in needs else 0.0, loss_type="dapo", scale_rewards="group", disable_dropout=True,
        bf16=p.precision == "bf16", gradient_checkpointing=p.gradient_checkpointing,
        model_init_kwargs={"dtype": "bfloat16" if p.precision == "bf16" else "float32"},
        use_vllm=p.rollout == "vllm", vllm_mode="colocate", vllm_gpu_memory_utilization=p.vllm_memory,
        logging_steps=updates, save_strategy="steps", save_steps=save_every * updates, save_total_limit=1,
        use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0,
    )


def train(spec: dict) -> None:
    """One run of the engine from a spec (run_cell's, or a launched process's JSON file); rank 0
    writes the curves and the final policy into the spec's folder. Resumes from the folder's last
    checkpoint. Exits 143 after a SIGTERM-triggered save."""
    from datasets import Dataset
    from transformers import AutoTokenizer

    from entrobench.protocols.rlvr.engine_tasks import engine_task

    protocol, setting = Protocol(**spec["protocol"]), Setting(**spec["setting"])
    out = Path(spec["folder"])
    cls = registry.get(spec["method"])
    policy_loss = cls(cls.Params(**spec["params"]), generator=torch.Generator().manual_seed(1000 * spec["seed"] + 3))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    args = trl.GRPOConfig(**engine_args(protocol, setting, spec["seed"], out, world, policy_loss.requires()))
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    task = engine_task(spec, tokenizer)
    updates = protocol.minibatches * protocol.ppo_epochs
    walltime = Walltime(updates)
    trainer = PolicyLossTrainer(
        model=spec["model"], reward_funcs=task.reward, args=args, train_dataset=Dataset.from_list(task.rows),
        processing_class=tokenizer, policy_loss=policy_loss,
        callbacks=[walltime, Report(Progress(spec["label"]), updates, protocol.steps)])
    walltime.trainer = trainer
    trainer.remove_callback(PrinterCallback)  # the log dicts; Report prints one line per GRPO step
    try:
        trainer.train(resume_from_checkpoint=get_last_checkpoint(str(out)))
    finally:
        walltime.close()
    if walltime.terminate:
        print(f"engine: SIGTERM, saved step {trainer.state.global_step // updates} to {out}; exiting to be rerun", file=sys.stderr, flush=True)
        raise SystemExit(checkpoint.TERMINATED)
    trainer.save_model(str(out / FINAL))
    if trainer.accelerator.is_main_process:
        tokenizer.save_pretrained(out / FINAL)
        result = {"curves": curves_from_log(trainer.state.log_history, updates), "world_size": world,
                  "engine": f"trl {trl.__version__}", "rollout": protocol.rollout, "device": str(trainer.accelerator.device)}
        (out / RESULT).write_text(json.dumps(result))


def curves_from_log(history: list[dict], updates_per_step: int) -> dict[str, list[float]]:
    """The per-GRPO-step curves from the trainer's log history (one log per GRPO step):
    the engine's reward, response length, grad norm and timings, and our loss module's logs.
    update_s is the step's wall time less its rollout (TRL's step_time is per optimizer step)."""
    logs = [entry for entry in history if "reward" in entry]

    def value(entry: dict, key: str) -> float:  # a NaN the engine averaged comes back as None
        found = entry.get(key)
        return math.nan if found is None else float(found)

    curves = {name: [value(entry, key) for entry in logs] for name, key in ENGINE_CURVES.items()}
    curves.update({name: [value(entry, LOG_PREFIX + name) for entry in logs] for name in LOSS_CURVES})
    step_s = [s * updates_per_step for s in curves.pop("step_s")]
    curves["update_s"] = [max(0.0, s - r) for s, r in zip(step_s, curves["rollout_s"])]
    return curves


# ---------------------------------------------------------------- one cell


def run_cell(run: CellRun) -> dict:
    """Train through the engine (in this process on one device, else on every GPU of the job under
    accelerate), then evaluate the final policy; the record's curves are the engine's logs."""
    from entrobench.protocols.rlvr.engine_tasks import check_runnable, evaluate_engine_run, model_folder

    config = run.config
    protocol, setting = Protocol(**config["protocol"]), Setting(**config["setting"])
    check_runnable(protocol, config["dataset"], run.data_root)
    model = model_folder(config, run.inputs, run.data_root)
    folder = engine_folder(run.checkpoint_path)
    code = [__file__, str(Path(__file__).with_name("engine_tasks.py")), *checkpoint.method_code(run.method_cls)]
    _claim(folder, checkpoint.fingerprint(config, *code))
    spec = {"protocol": config["protocol"], "setting": config["setting"], "seed": config["seed"], "method": config["method"],
            "params": config["params"], "dataset": config["dataset"], "model": model, "folder": str(folder),
            "data_root": str(run.data_root) if run.data_root else None, "label": run.progress.label}
    warnings = [w for w in [run.method_cls.schedule_warning(protocol.ppo_epochs, protocol.minibatches)] if w]
    gpus = torch.cuda.device_count()
    t0 = time.perf_counter()
    if gpus > 1:
        launch(spec, gpus, protocol)
    else:
        train(spec)
    train_s = time.perf_counter() - t0
    result = json.loads((folder / RESULT).read_text())
    outcome = evaluate_engine_run(run, spec, folder / FINAL, result["curves"], protocol, setting)
    outcome["metrics"]["train_s"] = train_s
    outcome.update(warnings=warnings, device=result["device"], engine={k: result[k] for k in ("engine", "world_size", "rollout")})
    shutil.rmtree(folder, ignore_errors=True)  # the record is written next: nothing left to resume
    return outcome


def engine_folder(checkpoint_path: Path | None) -> Path:
    """The engine's checkpoint folder beside the cell's record (a scratch folder without one)."""
    if checkpoint_path is None:
        return Path(tempfile.mkdtemp(prefix="entrobench-rlvr-engine-"))
    return checkpoint_path.with_name(checkpoint_path.name + ENGINE_DIR)


def _claim(folder: Path, fingerprint: str) -> None:
    """Keep the folder's checkpoints only if the same config and code made them."""
    mark = folder / FINGERPRINT
    if folder.is_dir() and (not mark.is_file() or mark.read_text() != fingerprint):
        print(f"engine: {folder} was left by another config or code version; starting over", file=sys.stderr, flush=True)
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    mark.write_text(fingerprint)


def accelerate_config(protocol: Protocol, processes: int) -> dict:
    """TRL's own accelerate config for the protocol's sharding (fsdp -> fsdp2.yaml, zero3 ->
    zero3.yaml, none -> multi_gpu.yaml), with this job's process count and precision."""
    name = {"fsdp": "fsdp2", "zero3": "zero3", "zero2": "zero2", "none": "multi_gpu"}[protocol.sharding]
    config = yaml.safe_load((Path(trl.__file__).parent / "accelerate_configs" / f"{name}.yaml").read_text())
    config.update(num_processes=processes, num_machines=1, mixed_precision="bf16" if protocol.precision == "bf16" else "no")
    if protocol.gradient_checkpointing and "fsdp_config" in config:
        config["fsdp_config"]["fsdp_activation_checkpointing"] = False  # TRL's gradient_checkpointing does it (not both)
    return config


def launch(spec: dict, processes: int, protocol: Protocol) -> None:
    """`accelerate launch` of `train` on `processes` GPUs of this node. A SIGTERM to this process is
    passed to the launched group, whose ranks save and exit; this one then exits 143 too."""
    folder = Path(spec["folder"])
    (folder / "spec.json").write_text(json.dumps(spec))
    (folder / "accelerate.yaml").write_text(yaml.safe_dump(accelerate_config(protocol, processes)))
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(folder / "accelerate.yaml"),
               "-m", "entrobench.protocols.rlvr.engine", str(folder / "spec.json")]
    child = subprocess.Popen(command, start_new_session=True)
    previous = signal.signal(signal.SIGTERM, lambda *_: os.killpg(child.pid, signal.SIGTERM))
    try:
        code = child.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
    if code == checkpoint.TERMINATED:
        raise SystemExit(checkpoint.TERMINATED)
    if code:
        raise RuntimeError(f"the engine's training processes failed (exit {code}); see the log above")


if __name__ == "__main__":  # a launched process: python -m entrobench.protocols.rlvr.engine spec.json
    train(json.loads(Path(sys.argv[1]).read_text()))
