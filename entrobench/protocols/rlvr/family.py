"""RLVR (reinforcement learning with verifiable rewards): what an RLVR card may say, its
datasets and metrics, and the cached supervised warm-up every cell starts from.

Imports nothing heavy: the DAG reads this to plan; `run.py` does the work.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from entrobench.family import Build, CellRun, Family
from entrobench.metrics import Metric
from entrobench.models.packaged import PACKAGED_MODELS, model_build
from entrobench.protocols import Dataset
from entrobench.protocols.rlvr.benchmarks import BENCHMARKS
from entrobench.protocols.rlvr.math_data import MATH_DIR, TRAIN_SETS

SCRATCH = "gpt2_scratch"  # a small decoder built from a transformers config and trained here
ENGINES = ("ours", "trl")  # protocol.engine


@dataclass(frozen=True)
class Protocol:
    # the policy: SCRATCH (dataset "addition"), a packaged chat model (entrobench/models/packaged.py;
    # dataset "addition_chat", no supervised warm-up), or a checkpoint folder under the data root (full scale)
    model: str = SCRATCH
    # the training engine: "ours" (trainer.py: one process, our rollout loop) or "trl" (engine.py:
    # TRL's GRPOTrainer with the same loss modules; accelerate on every GPU of the job)
    engine: str = "ours"
    rollout: str = "hf"  # engine trl: "hf" (transformers generate) or "vllm" (vLLM colocated with training; GPUs)
    sharding: str = "none"  # engine trl on several GPUs: "fsdp" (FSDP2), "zero3"/"zero2" (DeepSpeed; pip install deepspeed), "none" (DDP)
    precision: str = "fp32"  # engine trl: "fp32", or "bf16" weights and compute
    gradient_checkpointing: bool = False  # engine trl: recompute activations in the backward pass (long responses)
    vllm_memory: float = 0.3  # engine trl, rollout vllm: share of each GPU's memory vLLM takes beside training
    # math datasets: the benchmarks the final policy is evaluated on (benchmarks.BENCHMARKS), the paper's Table 2 columns
    benchmarks: list[str] = field(default_factory=list)
    n_layer: int = 2  # SCRATCH only: decoder layers
    d_model: int = 64  # SCRATCH only: width; MLP 4x
    n_head: int = 4  # SCRATCH only: attention heads
    # the generated task (datasets "addition"): digits per operand, held-out prompts
    digits: int = 3
    held_out: int = 512
    max_new_tokens: int = 24  # "addition_chat": response cap in tokens (a response ends at the model's end of turn)
    # supervised warm-up (answer tokens only), stopped by a sampled pass@1 trigger: learning is a
    # sharp phase transition, so a fixed step count would start RL anywhere from 0.03 to 0.98
    warmup_lr: float = 3e-3  # AdamW
    warmup_batch: int = 256  # sequences per step
    warmup_min_steps: int = 250  # first step the trigger is checked
    warmup_max_steps: int = 3000  # stop here even if the trigger never fires (recorded)
    warmup_check_every: int = 10  # steps between trigger checks
    warmup_target_pass1: float = 0.30  # stop once sampled pass@1 (T = 1) reaches this
    warmup_check_prompts: int = 512  # training-distribution prompts the trigger samples once each
    # GRPO
    steps: int = 250  # rollout batches (policy updates happen minibatches x ppo_epochs times per step)
    prompts_per_step: int = 32  # x the setting's group size = sequences per rollout batch
    minibatches: int = 2  # optimizer steps per rollout batch and epoch; >1 makes later ones off-policy
    # the unit the loss (and a variant's token selection: Clip-Cov, KL-Cov, Lp-Reg) is computed on:
    # each minibatch cut into this many micro-batches of whole sequences, gradients accumulated
    # (verl computes it per micro-batch); 1: the whole minibatch
    micro_batches: int = 1
    ppo_epochs: int = 1
    lr: float = 1e-3  # AdamW, betas and weight decay below
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0  # max global gradient norm
    weight_decay: float = 0.01  # AdamW's decoupled weight decay (torch's default; verl's recipes: 0)
    # linear lr ramp over the first optimizer updates (0: none). A fresh Adam's first update moves
    # every weight by about lr whatever its gradient: at lr 1e-3 on the smoke model one update
    # moved the policy 0.6 nats/token from the warm-up and halved its reward before RL recovered
    lr_warmup_updates: int = 0
    # measurement
    eval_samples: int = 8  # k samples per held-out prompt: pass@1..k, maj@k (through lm-eval)
    eval_batch_size: int = 1024  # sequences per lm-eval generate call
    curve_eval_prompts: int = 64  # held-out prompts for the per-step greedy accuracy curve (0: none)
    smooth: int = 10  # moving-average window (steps) for the law fit and the end-of-run values

    def __post_init__(self):
        for name in ("n_layer", "d_model", "n_head", "digits", "held_out", "warmup_batch", "warmup_check_every",
                     "warmup_check_prompts", "steps", "prompts_per_step", "minibatches", "micro_batches", "ppo_epochs", "eval_samples",
                     "eval_batch_size", "smooth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.prompts_per_step % self.minibatches:
            raise ValueError(f"prompts_per_step ({self.prompts_per_step}) must be a multiple of minibatches ({self.minibatches}): groups are not split")
        if self.d_model % self.n_head:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_head ({self.n_head})")
        if not 0 < self.warmup_target_pass1 <= 1:
            raise ValueError(f"warmup_target_pass1 must be in (0, 1], got {self.warmup_target_pass1}")
        for name, allowed in (("engine", ENGINES), ("rollout", ("hf", "vllm")), ("sharding", ("none", "fsdp", "zero2", "zero3")),
                              ("precision", ("fp32", "bf16"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        unknown = [b for b in self.benchmarks if b not in BENCHMARKS]
        if unknown:
            raise ValueError(f"benchmarks: {unknown[0]!r} is not one of {', '.join(BENCHMARKS)}")
        if not 0 < self.vllm_memory < 1:
            raise ValueError(f"vllm_memory must be in (0, 1), got {self.vllm_memory}")


@dataclass(frozen=True)
class Setting:
    name: str
    group_size: int = 8  # G samples per prompt; advantages are normalized within a group
    temperature: float = 1.0  # rollout (and evaluation) sampling temperature

    def __post_init__(self):
        if self.group_size < 2:
            raise ValueError(f"group_size must be >= 2 (GRPO normalizes within a group), got {self.group_size}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")


DATASETS = {
    "addition": Dataset(False, "n-digit addition generated here, fixed-width answer, exact-match verifier"),
    "addition_chat": Dataset(False, "n-digit addition generated here for a chat model: one worked example as an earlier turn, "
                             "free-form answer scored on 'answer is N', else the last number"),
    "dapo_math_17k": Dataset(True, "DAPO-Math-17k (Yu et al. 2025), the training set of the paper's Table 2 (arXiv 2505.22617, Sec. 4.3), "
                             "staged from the hub under the data root (math_data.py); math-verify reward; full scale"),
}

METRICS = {
    "accuracy": Metric("fraction", "higher", "greedy exact match on the held-out prompts after RL"),
    "accuracy_start": Metric("fraction", "higher", "greedy exact match on the held-out prompts at the warm-up checkpoint"),
    "pass_at_1": Metric("fraction", "higher", "pass@1 on held-out prompts (mean over k samples at T)"),
    "pass_at_1_start": Metric("fraction", "higher", "pass@1 of the warm-up checkpoint"),
    "pass_at_2": Metric("fraction", "higher", "unbiased pass@2 from k samples"),
    "pass_at_4": Metric("fraction", "higher", "unbiased pass@4 from k samples"),
    "pass_at_8": Metric("fraction", "higher", "unbiased pass@8 from k samples"),
    "maj_at_8": Metric("fraction", "higher", "most frequent of 8 sampled answers is correct"),
    "entropy_start": Metric("nats/token", "higher", "policy entropy over the first rollout batch's response tokens"),
    "entropy_final": Metric("nats/token", "higher", "policy entropy, mean of the last `smooth` steps"),
    "entropy_ratio": Metric("ratio", "higher", "entropy_final / entropy_start", may_be_undefined=True),
    "steps_to_10pct": Metric("steps", "higher", "first step where smoothed entropy < 10% of its start (—: not within the run)", may_be_undefined=True),
    "reward_start": Metric("fraction", "higher", "rollout reward of the first step"),
    "reward_final": Metric("fraction", "higher", "rollout reward, mean of the last `smooth` steps"),
    "law_a": Metric("reward", "", "fitted a of R = -a exp(H) + b (smoothed per-step values)", may_be_undefined=True),
    "law_b": Metric("reward", "", "fitted b of R = -a exp(H) + b", may_be_undefined=True),
    "law_r2": Metric("R^2", "higher", "R^2 of the law on smoothed per-step (H, R)", may_be_undefined=True),
    "law_r2_raw": Metric("R^2", "higher", "R^2 of the law on unsmoothed per-step (H, R)", may_be_undefined=True),
    "law_ceiling": Metric("reward", "higher", "predicted reward at H = 0: -a + b", may_be_undefined=True),
    "selected_frac": Metric("fraction", "", "mean share of response tokens detached (Clip-Cov) or penalized (KL-Cov)"),
    "clip_frac": Metric("fraction", "lower", "mean share of response tokens silenced by the PPO clip"),
    "kl_ref_final": Metric("nats/token", "lower", "k3 KL to the warm-up policy, mean of the last `smooth` steps (—: an engine run "
                           "whose method keeps no reference)", may_be_undefined=True),
    "train_s": Metric("s", "lower", "wall time of the GRPO steps (rollout + update), evaluation excluded"),
    "eval_s": Metric("s", "lower", "wall time of the final held-out evaluation through lm-eval"),
    # math datasets: the paper's Table 2, one column per benchmark and their plain mean (its Avg.)
    "avg_acc": Metric("fraction", "higher", "mean of the benchmark accuracies (the paper's Table 2 Avg.)"),
    **{f"acc_{name}": Metric("fraction", "higher", bench.description) for name, bench in BENCHMARKS.items()},
}


def warmup_config(protocol: Protocol, dataset: str) -> dict:
    """What the warm-up checkpoint depends on: shared by every method, seed and card that agree.
    A pretrained model has no supervised warm-up: its "checkpoint" is the evaluation of the
    model as it is, which every GRPO cell reports as its start."""
    task = {"dataset": dataset, "model": protocol.model, "digits": protocol.digits, "held_out": protocol.held_out,
            "eval_samples": protocol.eval_samples, "eval_batch_size": protocol.eval_batch_size}
    if protocol.model != SCRATCH:
        return {**task, "max_new_tokens": protocol.max_new_tokens}
    return {
        **task,
        "n_layer": protocol.n_layer,
        "d_model": protocol.d_model,
        "n_head": protocol.n_head,
        **{name: getattr(protocol, name) for name in Protocol.__dataclass_fields__ if name.startswith("warmup_")},
    }


_HERE = Path(__file__).resolve().parent
# what the warm-up runs: its training, and the evaluation of the checkpoint (its accuracy_start, pass_at_1_start)
WARMUP_CODE = ("run.py", "warmup.py", "model.py", "task.py", "evaluate.py", "hf_folder.py",
               "tasks/eb_rlvr_addition.yaml", "tasks/eb_rlvr_addition_greedy.yaml", "tasks/utils.py")


# what an engine cell runs besides the above, and a math dataset's cell besides that
ENGINE_CODE = ("engine.py", "engine_tasks.py")
MATH_CODE = ("math_data.py", "math_answers.py", "benchmarks.py", "tasks/eb_math.yaml")


def unavailable(model: str, dataset: str, engine: str = "ours") -> str:
    """Why our own trainer cannot run this model on this dataset ("" where it can): the paper's
    math setting runs through the engine (`engine: trl`, engine.py). Such cells are skipped by
    design: they ask the cluster for nothing and write the reason as their record."""
    if engine != "ours" or (dataset, model == SCRATCH) in (("addition", True), ("addition_chat", False)):
        return ""
    return (f"dataset {dataset!r} with model {model!r}: our own trainer runs 'addition' with the from-scratch decoder and "
            "'addition_chat' with a pretrained chat model; the paper's math sets run through the engine (protocol.engine: trl)")


def model_builds(protocol: Protocol) -> dict[str, Build]:
    """A packaged model's converted folder, else nothing (scratch models and data-root folders)."""
    return {"model": model_build(protocol.model)} if protocol.model in PACKAGED_MODELS else {}


class RLVR(Family):
    name = "rlvr"
    warm_imports = ("entrobench.protocols.rlvr.run", "entrobench.lm.harness", "entrobench.lm.sampler_lm", "lm_eval.evaluator", "lm_eval.tasks")
    Protocol = Protocol
    Setting = Setting
    datasets = DATASETS
    metrics = METRICS

    def check(self, scaled) -> None:
        p = scaled.protocol
        if p.engine != "ours" and p.model == SCRATCH:
            raise ValueError(f"protocol.engine {p.engine!r} trains a pretrained model (a Hugging Face folder with a tokenizer), not {SCRATCH}")
        for dataset in scaled.datasets:
            if dataset in TRAIN_SETS and (p.engine == "ours" or not p.benchmarks):
                raise ValueError(f"dataset {dataset!r} runs through an engine (protocol.engine: trl) and is evaluated on protocol.benchmarks")
        for setting in scaled.settings:
            size = p.prompts_per_step * setting.group_size // p.minibatches
            if size % p.micro_batches:
                raise ValueError(f"protocol.micro_batches ({p.micro_batches}) must divide the {size} sequences of a minibatch "
                                 f"(prompts_per_step x group_size / minibatches, setting {setting.name})")

    def cell_builds(self, scaled, dataset: str, setting: Setting, seed: int) -> dict[str, Build]:
        """The warm-up checkpoint every GRPO cell starts from (shared by methods, seeds and cards
        that agree on its config), and a packaged policy's converted folder. A math dataset has no
        warm-up: its data and the policy's weights are files under the data root."""
        protocol = scaled.protocol
        models = model_builds(protocol)
        if dataset in TRAIN_SETS:
            return models
        warmup = Build("rlvr", "warmup", dataset, "entrobench.protocols.rlvr.run:train_warmup", warmup_config(protocol, dataset),
                       inputs=models, sources=tuple(str(_HERE / f) for f in WARMUP_CODE), heavy=not unavailable(protocol.model, dataset))
        return {"warmup": warmup, **models}

    def cell_skip(self, scaled, dataset: str, setting: Setting) -> str:
        return unavailable(scaled.protocol.model, dataset, scaled.protocol.engine)

    def cell_sources(self, scaled, dataset: str, setting: Setting) -> list[Path]:
        engine = ENGINE_CODE if scaled.protocol.engine != "ours" else ()
        math = MATH_CODE if dataset in TRAIN_SETS else ()
        return [_HERE / f for f in ("run.py", "trainer.py", "model.py", "task.py", "evaluate.py", "hf_folder.py", "law.py", "tasks/utils.py",
                                    "tasks/eb_rlvr_addition.yaml", "tasks/eb_rlvr_addition_greedy.yaml", *engine, *math)]

    def cell_data_files(self, scaled, dataset: str, setting: Setting) -> list[str]:
        """A math cell's training set and benchmark items (math_data.py stages them) and its policy's weights."""
        if dataset not in TRAIN_SETS:
            return []
        model = [] if scaled.protocol.model in PACKAGED_MODELS else [f"{scaled.protocol.model}/config.json"]
        return [f"{MATH_DIR}/{name}.jsonl" for name in (dataset, *scaled.protocol.benchmarks)] + model

    def run_cell(self, run: CellRun) -> dict:
        from entrobench.protocols.rlvr.run import run_cell

        return run_cell(run)

    def draw(self, card, scale, records, out_dir):
        from entrobench.protocols.rlvr.plots import draw

        return draw(card, scale, records, out_dir)


FAMILY = RLVR()
