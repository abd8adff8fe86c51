"""A few GRPO steps of a 0.5B-1.5B chat model through the RLVR engine adapter on one GPU, vLLM
rollouts: seconds per step (rollout, update), peak GPU memory, and that the curves come out.

    python bench/rlvr_gpu.py --model /data/models/Qwen2.5-0.5B-Instruct      # GPU: vLLM colocated, bf16 (< 3 min)
    python bench/rlvr_gpu.py --model DIR --rollout hf --steps 2 --prompts 2    # CPU run of the same code (the tests' tiny model)

The model is a local Hugging Face folder with a chat template (the GPU machine cannot download).
The cell's own path: `engine.train` on the medium scale's task (two-digit addition with a worked
example, free-form answers scored on "answer is N") with our rlvr/clip_cov by default, TRL's
GRPOTrainer doing rollouts (vLLM colocated with training, `--vllm-memory` of the GPU) and
updates. Writes bench/results/rlvr_gpu.json (or --out): per-step rollout and update seconds, their
medians without the first step (vLLM and CUDA warm-up), peak memory torch allocated, the engine's
curves and the run's settings.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO)]


def run(args) -> dict:
    import torch

    from entrobench.protocols.rlvr import engine
    from entrobench.protocols.rlvr.family import Protocol, Setting

    gpu = torch.cuda.is_available()
    protocol = Protocol(model=str(args.model), engine="trl", rollout=args.rollout, precision="bf16" if gpu else "fp32", digits=2,
                        max_new_tokens=args.max_new_tokens, steps=args.steps, prompts_per_step=args.prompts, minibatches=2,
                        lr=1e-6, vllm_memory=args.vllm_memory, curve_eval_prompts=0)
    setting = Setting(name=f"g{args.group}", group_size=args.group)
    with tempfile.TemporaryDirectory(prefix="entrobench-rlvr-gpu-") as folder:
        spec = {"protocol": dataclasses.asdict(protocol), "setting": dataclasses.asdict(setting), "seed": 0, "method": args.method,
                "params": json.loads(args.params), "dataset": "addition_chat", "model": str(args.model), "folder": folder,
                "data_root": None, "label": "rlvr_gpu"}
        if gpu:
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        engine.train(spec)
        wall = time.perf_counter() - start
        result = json.loads((Path(folder) / engine.RESULT).read_text())
    curves = result["curves"]
    later = slice(1, None) if len(curves["rollout_s"]) > 1 else slice(None)
    return {
        "machine": {"host": platform.node(), "gpu": torch.cuda.get_device_name() if gpu else None, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M")},
        "setting": {"model": str(args.model), "method": args.method, "params": json.loads(args.params), "rollout": args.rollout,
                    "precision": protocol.precision, "steps": args.steps, "prompts": args.prompts, "group_size": args.group,
                    "max_new_tokens": args.max_new_tokens, "engine": result["engine"], "device": result["device"]},
        "wall_s": wall,
        "rollout_s_median": statistics.median(curves["rollout_s"][later]),
        "update_s_median": statistics.median(curves["update_s"][later]),
        "peak_gpu_mem_mb": torch.cuda.max_memory_allocated() / 2**20 if gpu else None,
        "curves": curves,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a local Hugging Face folder (chat model, 0.5B-1.5B on the GPU)")
    parser.add_argument("--rollout", choices=("vllm", "hf"), default="vllm")
    parser.add_argument("--method", default="rlvr/clip_cov")
    parser.add_argument("--params", default='{"cov_lb": 0.0, "detach_frac": 0.01}', help="the method's parameters, JSON")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--prompts", type=int, default=16, help="prompts per step (x group size = sequences)")
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--vllm-memory", type=float, default=0.3)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "rlvr_gpu.json")
    args = parser.parse_args(argv)
    if not (args.model / "config.json").is_file():
        parser.error(f"--model {args.model}: no config.json there (a local Hugging Face folder is needed; nothing is downloaded)")
    figures = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=1) + "\n")
    print(f"{figures['setting']['device']}: rollout {figures['rollout_s_median']:.2f} s, update {figures['update_s_median']:.2f} s per step "
          f"({args.prompts} x {args.group} sequences, {args.max_new_tokens} tokens); wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
