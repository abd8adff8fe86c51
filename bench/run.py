"""Speed figures for entrobench, each written to a JSON file under bench/results/.

    python bench/run.py throughput       # TTA adaptation throughput (images/s) per method
    python bench/run.py smoke            # wall time of each card's smoke table from scratch (minutes)
    python bench/run.py noop             # wall time of `make smoke` when nothing changed
    python bench/run.py decoding         # generated tokens/s per sampler in `generate` (SmolLM2-135M)

Timings are figures, not tests: nothing here asserts a target. Run on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "results"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--workflow-profile", str(REPO / "workflows/profiles/local")]


def machine() -> dict:
    import torch

    return {"host": platform.node(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(), "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M")}


def write(name: str, figures: dict) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **figures}, indent=1) + "\n")
    print(f"wrote {path.relative_to(REPO)}")
    return path


def throughput(args) -> None:
    """Images per second through `method.adapt` on one thread, batch 64 (and 1), small CNN, 32x32 digits."""
    import numpy as np
    import torch

    from entrobench.data.corruptions import corrupt
    from entrobench.data.sources import load_clean
    from entrobench.models.zoo import build_model
    from methods import registry

    torch.set_num_threads(1)
    split = load_clean("digits", None, None, None)
    x = corrupt(split.x_test, "gaussian_noise", 5, np.random.default_rng(0))
    rows = []
    for name in registry.available("tta"):
        cls = registry.get(name)
        params = cls.Params() if not hasattr(cls.Params(), "fisher_alpha") else cls.Params(fisher_alpha=0.0)
        for norm, batch in (("bn", 64), ("gn", 64), ("gn", 1)):
            torch.manual_seed(0)
            method = cls(build_model("small_cnn", norm, 10, 1), params, 10)
            batches = [torch.from_numpy(x[i : i + batch]) for i in range(0, args.images, batch)]
            method.adapt(batches[0])  # warm-up
            start = time.perf_counter()
            for xb in batches:
                method.adapt(xb)
            seconds = time.perf_counter() - start
            n = sum(len(b) for b in batches)
            rows.append({"method": name, "norm": norm, "batch_size": batch, "images": n, "seconds": round(seconds, 3), "images_per_s": round(n / seconds, 1)})
            print(f"{name:14s} {norm} bs{batch:<3d} {n / seconds:8.1f} images/s")
    write("tta_throughput", {"what": "images/s through adapt() on 1 thread, small_cnn, 32x32 digits with gaussian noise 5", "rows": rows})


def smoke(args) -> None:
    """Each card's smoke table from an empty results folder: source models, cells, MLflow, table."""
    from entrobench.card import load_cards

    rows = []
    for card in load_cards(REPO / "configs").values():
        if "smoke" not in card.spec.scales:
            continue
        with tempfile.TemporaryDirectory() as work:
            start = time.perf_counter()
            proc = subprocess.run([*SNAKEMAKE, "--directory", work, f"results/{card.id}/smoke/table.md"], capture_output=True, text=True)
            seconds = time.perf_counter() - start
        rows.append({"card": card.id, "seconds": round(seconds, 1), "ok": proc.returncode == 0})
        print(f"{card.id:20s} {seconds:7.1f} s {'ok' if proc.returncode == 0 else 'FAILED'}")
    write("smoke_walltime", {"what": "wall time of one card's smoke table from scratch, 2 cores (profile local)", "rows": rows})


def noop(args) -> None:
    """`make smoke` when everything is up to date: what a user waits for on a rerun."""
    results = REPO / "results"
    if not (results / "report.html").is_file():
        sys.exit("noop: run `make smoke` first; this measures the rerun")
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        subprocess.run(["make", "-s", "smoke"], cwd=REPO, check=True, capture_output=True)
        times.append(round(time.perf_counter() - start, 2))
    write("noop_rerun", {"what": "`make smoke` with nothing to do (venv check, DAG, report check)", "seconds": times, "target_s": 10})


def decoding(args) -> None:
    """Tokens/s of `generate` per sampler: same model, prompts, batch and length (EOS ignored, so
    every row generates max_new_tokens), ours and transformers' own top-p and min-p; plus the
    cost of the logits processors alone on (batch, vocab) logits, where samplers differ most."""
    import statistics

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList

    from entrobench.protocols.decoding import run, spec
    from entrobench.protocols.decoding.task_data import TASKS_DIR, _read_jsonl
    from methods import registry

    torch.set_num_threads(1)
    protocol = spec.Protocol()
    folder = REPO / spec.model_path(protocol)
    if not (folder / "config.json").is_file():
        print(run.convert_model(spec.model_config(protocol), folder))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": r["prompt"]}], tokenize=False, add_generation_prompt=True)
               for r in _read_jsonl(TASKS_DIR / "open_ended.jsonl")][: args.batch]
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    off = {"do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0}
    configs = {name.split("/")[1]: ({**off, "logits_processor": LogitsProcessorList(registry.get(name)(registry.get(name).Params()).processors(args.temperature))})
               for name in registry.available("decoding")}
    configs["hf_top_p"] = {"do_sample": True, "temperature": args.temperature, "top_k": 0, "top_p": 0.9}
    configs["hf_min_p"] = {"do_sample": True, "temperature": args.temperature, "top_k": 0, "top_p": 1.0, "min_p": 0.1}
    times = {name: [] for name in configs}
    for repeat in range(args.repeats + 1):  # round-robin, so load that drifts hits every sampler alike; round 0 warms up
        for name, kwargs in configs.items():
            torch.manual_seed(repeat)
            start = time.perf_counter()
            with torch.no_grad():
                model.generate(**batch, max_new_tokens=args.tokens, min_new_tokens=args.tokens, pad_token_id=tokenizer.eos_token_id, **kwargs)
            times[name].append(time.perf_counter() - start)
    rows = []
    for name, taken in times.items():
        seconds = statistics.median(taken[1:])
        rows.append({"sampler": name, "tokens_per_s": round(len(prompts) * args.tokens / seconds, 1), "seconds": round(seconds, 3)})
        print(f"{name:12s} {rows[-1]['tokens_per_s']:8.1f} tokens/s")
    logits = torch.randn(len(prompts), model.config.vocab_size, generator=torch.Generator().manual_seed(0)) * 3
    processor_us = {}
    for name in registry.available("decoding"):
        procs = registry.get(name)(registry.get(name).Params()).processors(args.temperature)
        start = time.perf_counter()
        for _ in range(args.steps):
            scores = logits
            for proc in procs:
                scores = proc(None, scores)
        processor_us[name.split("/")[1]] = round(1e6 * (time.perf_counter() - start) / args.steps, 1)
    by = {r["sampler"]: r for r in rows}
    write("decoding_throughput", {
        "what": f"generated tokens/s of generate, SmolLM2-135M-Instruct float32, 1 thread, batch {len(prompts)}, {args.tokens} new tokens, T {args.temperature}, median of {args.repeats}",
        "rows": rows,
        "processor_us_per_step": processor_us,
        "top_h_over_top_p_cost_per_token": round(by["top_p"]["tokens_per_s"] / by["top_h"]["tokens_per_s"], 3),
        "top_h_over_hf_top_p_cost_per_token": round(by["hf_top_p"]["tokens_per_s"] / by["top_h"]["tokens_per_s"], 3),
        "top_h_over_top_p_processor_cost": round(processor_us["top_h"] / processor_us["top_p"], 3),
        "target": "top-H costs at most 1.1x top-p per token",
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="bench", required=True)
    p = sub.add_parser("throughput")
    p.add_argument("--images", type=int, default=512)
    p.set_defaults(func=throughput)
    sub.add_parser("smoke").set_defaults(func=smoke)
    p = sub.add_parser("noop")
    p.add_argument("--repeats", type=int, default=3)
    p.set_defaults(func=noop)
    p = sub.add_parser("decoding")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=50, help="logits-processor calls timed per sampler")
    p.set_defaults(func=decoding)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
