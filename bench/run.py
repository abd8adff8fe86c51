"""Speed figures for entrobench, each written to a JSON file under bench/results/.

    python bench/run.py throughput       # TTA adaptation throughput (images/s) per method
    python bench/run.py smoke            # `make smoke` from scratch, with a profile per family (minutes)
    python bench/run.py noop             # wall time of `make smoke` when nothing changed
    python bench/run.py rlvr-step        # one GRPO step (rollout, update): ours, TRL's own GRPO, ours through TRL (engine.py)
    python bench/run.py decoding         # generated tokens/s per sampler in `generate` (SmolLM2-135M)
    python bench/run.py decoding-step    # SmolLM2-135M's prefill and decode step by dtype and batch: where decoding cells' time goes

Timings are figures, not tests: nothing here asserts a target. Run on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
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


def read(name: str) -> dict:
    """The figures `write` left under this name, to keep beside new ones ({} when none)."""
    path = OUT / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


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
    """`make smoke` timed as a user runs it (install excluded), from an empty results folder, then
    profiled from snakemake's log and the records: wall time, the first table's time, per family
    the jobs' seconds against the experiments' own (a record's wall_s), i.e. what process start,
    imports and card loading cost per cell, and how busy the cores were. Appended to
    bench/results/smoke_walltime.json under the commit measured, so before and after sit side by side."""
    results = REPO / "results"
    if args.from_log:  # profile a finished run again (the wall time stays the one measured then)
        log, wall, ok = Path(args.from_log), None, None
    else:
        if results.exists() and any(results.iterdir()):
            sys.exit("smoke: results/ is not empty; move it aside (this measures a run from scratch)")
        subprocess.run(["make", "-s", "install"], cwd=REPO, check=True)
        logs = set((REPO / ".snakemake" / "log").glob("*.snakemake.log"))
        start = time.time()
        ok = subprocess.run(["make", "smoke"], cwd=REPO).returncode == 0
        wall = time.time() - start
        # the run's log, not the shorter one of the HTML report's snakemake call after it
        log = max(set((REPO / ".snakemake" / "log").glob("*.snakemake.log")) - logs, key=lambda p: p.stat().st_size)
    began = time.mktime(time.strptime(log.name.split(".")[0], "%Y-%m-%dT%H%M%S"))  # snakemake's start, from the log's name
    tables = sorted(results.glob("*/smoke/table.md"), key=lambda p: p.stat().st_mtime)
    run = {"commit": _git_sha(), "ok": ok, "wall_s": round(wall) if wall else None, "log": log.name, "jobs": 0,
           "first_table_s": round(tables[0].stat().st_mtime - began) if tables else None,
           "first_table": str(tables[0].relative_to(REPO)) if tables else None,
           "tables": {str(t.relative_to(REPO)): round(t.stat().st_mtime - began) for t in tables}}
    jobs = _snakemake_jobs(log.read_text())
    run["jobs"] = len(jobs)
    span = max(j["start"] + j["seconds"] for j in jobs) - began if jobs else 0
    run["snakemake_s"] = round(span)
    run["cores_busy"] = round(sum(j["seconds"] for j in jobs) / span, 2) if span else None  # 2.0: both cores always working
    families: dict[str, dict] = {}
    for job in jobs:
        path = REPO / job["output"]
        if job["rule"] == "run_cell" and path.is_file():
            rec = json.loads(path.read_text())
            row = families.setdefault(rec["family"], {"cells": 0, "cell_job_s": 0, "experiment_s": 0.0, "cpu_s": 0.0, "build_jobs": 0, "build_job_s": 0})
            row["cells"] += 1
            row["cell_job_s"] += job["seconds"]
            row["experiment_s"] += rec.get("wall_s", 0.0)
            row["cpu_s"] += rec.get("cost", {}).get("cpu_s", 0.0)
        elif job["rule"] == "build" and job["output"].startswith("results/_cache/"):
            row = families.setdefault(job["output"].split("/")[2], {"cells": 0, "cell_job_s": 0, "experiment_s": 0.0, "cpu_s": 0.0, "build_jobs": 0, "build_job_s": 0})
            row["build_jobs"] += 1
            row["build_job_s"] += job["seconds"]
    for row in families.values():  # per cell: the process outside run_cell (start, imports, card, record)
        row["overhead_per_cell_s"] = round((row["cell_job_s"] - row["experiment_s"]) / row["cells"], 1) if row["cells"] else None
        row["experiment_s"], row["cpu_s"] = round(row["experiment_s"]), round(row["cpu_s"])
    run["families"] = families
    run["other_rules_s"] = {rule: sum(j["seconds"] for j in jobs if j["rule"] == rule) for rule in sorted({j["rule"] for j in jobs} - {"run_cell", "build"})}
    old = read("smoke_walltime")
    earlier = old.get("runs", []) or [{"commit": "(older)", "date": old.get("machine", {}).get("date"), "note": "each card alone", "per_card": old.get("rows", [])}]
    runs = [r for r in earlier if r.get("commit") != run["commit"]] + [{"date": time.strftime("%Y-%m-%d %H:%M"), **run}]
    write("smoke_walltime", {"what": "`make smoke` from empty results/, install excluded; profile from snakemake's log (1 s resolution) "
                             "and the cell records (wall_s: inside run_cell)", "runs": runs})
    print(json.dumps(run, indent=1))


def _git_sha() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()


def _snakemake_jobs(log: str) -> list[dict]:
    """Each finished job of a snakemake log: rule, first output, seconds from its start stamp to
    its `Finished jobid` stamp."""
    stamp, pending, open_jobs, done = None, None, {}, []
    for line in log.splitlines():
        text = line.strip()
        if text.startswith("[") and text.endswith("]") and text[1:4].isalpha():
            stamp = time.mktime(time.strptime(text[1:-1], "%a %b %d %H:%M:%S %Y"))
        elif text.endswith(":") and text.split()[0] in ("rule", "localrule"):
            pending = {"rule": text.split()[1][:-1], "start": stamp, "output": ""}
        elif pending and text.startswith("output:"):
            pending["output"] = text.split(":", 1)[1].split(",")[0].strip()
        elif pending and text.startswith("jobid:"):
            open_jobs[text.split()[1]] = pending
            pending = None
        elif text.startswith("Finished jobid:") and text.split()[2] in open_jobs:
            job = open_jobs.pop(text.split()[2])
            done.append({**job, "seconds": stamp - job["start"]})
    return done


def noop(args) -> None:
    """`make smoke` when everything is up to date: what a user waits for on a rerun. With
    `--checkouts`, each of those checkouts (finished results in each, e.g. brought up to date with
    `snakemake --touch`) is timed in turn, alternating, so that a change and its reference are
    measured side by side in one run. Each call adds one measurement to noop_rerun.json, with
    whether SLURM's commands are installed and its controller running (the issue asks for the
    rerun both where slurm-wlm is installed and stopped and where it is absent)."""
    checkouts = [Path(c).resolve() for c in args.checkouts] or [REPO]
    for checkout in checkouts:
        if not (checkout / "results" / "report.html").is_file():
            sys.exit(f"noop: run `make smoke` in {checkout} first; this measures the rerun")
    venv = ["VENV=" + str(Path(args.venv).resolve())] if args.venv else []
    times: dict[str, list[float]] = {str(c): [] for c in checkouts}
    for _ in range(args.repeats):
        for checkout in checkouts:
            start = time.perf_counter()
            subprocess.run(["make", "-s", "smoke", *venv], cwd=checkout, check=True, capture_output=True)
            times[str(checkout)].append(round(time.perf_counter() - start, 2))
    commits = {str(c): subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=c, capture_output=True, text=True).stdout.strip() for c in checkouts}
    slurm = {"installed": shutil.which("sinfo") is not None,
             "controller_running": shutil.which("pgrep") is not None and subprocess.run(["pgrep", "-x", "slurmctld"], capture_output=True).returncode == 0}
    measurement = {"date": time.strftime("%Y-%m-%d %H:%M"), "slurm": slurm, "conditions": args.conditions,
                   "runs": [{"checkout": c, "commit": commits[c], "seconds": t, "median_s": round(statistics.median(t), 2)} for c, t in times.items()]}
    write("noop_rerun", {"what": "`make smoke` with nothing to do (venv check, DAG, report check)", "target_s": 5,
                         "measurements": [*read("noop_rerun").get("measurements", []), measurement]})
    for run in measurement["runs"]:
        print(f"{run['commit']}: median {run['median_s']} s of {run['seconds']} (SLURM {slurm})")


def rlvr_step(args) -> None:
    """Seconds per GRPO step, rollout and update apart, on the same ~100k-parameter GPT-2 decoder
    (smoke size), 32 prompts x 8 samples, 4 answer tokens, 2 optimizer steps of 128 sequences per
    rollout batch, one thread: our trainer; TRL's GRPOTrainer with its built-in GRPO loss; and TRL's
    GRPOTrainer with our rlvr/grpo through the adapter (entrobench/protocols/rlvr/engine.py), the
    last two alternated over `rounds` runs so that load on a shared machine hits both alike. TRL's
    rollout is its `_generate_and_score_completions` (timed by wrapping it), its update the rest."""
    import torch

    torch.set_num_threads(1)
    figures = {"setting": {"prompts": 32, "group_size": 8, "answer_tokens": 4, "minibatches": 2, "steps_timed": args.steps, "rounds": args.rounds,
                           "model": "GPT-2 config, 2 layers, d_model 64, 4 heads, from scratch"}}
    figures["entrobench"] = _time_ours(args.steps)
    runs = {"trl": [], "trl_adapter": []}
    for _ in range(args.rounds):
        runs["trl"].append(_time_trl(args.steps))
        runs["trl_adapter"].append(_time_trl(args.steps, adapter=True))
    for name, timed in runs.items():
        figures[name] = {"version": timed[0]["version"], "note": timed[0]["note"],
                         **{k: [t for run in timed for t in run[k]] for k in ("rollout_s", "update_s")}}
    for name in ("entrobench", "trl", "trl_adapter"):
        f = figures[name]
        f.update({f"{k}_median": statistics.median(f[k]) for k in ("rollout_s", "update_s")})
    figures["adapter_over_builtin_update"] = figures["trl_adapter"]["update_s_median"] / figures["trl"]["update_s_median"]
    figures["adapter_over_builtin_step"] = ((figures["trl_adapter"]["rollout_s_median"] + figures["trl_adapter"]["update_s_median"])
                                            / (figures["trl"]["rollout_s_median"] + figures["trl"]["update_s_median"]))
    print(f"adapter / built-in GRPO: update {figures['adapter_over_builtin_update']:.3f}x, step {figures['adapter_over_builtin_step']:.3f}x")
    write("rlvr_step", figures)


def _time_ours(steps: int) -> dict:
    import dataclasses

    import torch

    from entrobench.protocols.rlvr.model import build_policy
    from entrobench.protocols.rlvr.family import Protocol, Setting
    from entrobench.protocols.rlvr.task import Addition
    from entrobench.protocols.rlvr.trainer import GRPOTrainer
    from methods import registry

    protocol, setting = Protocol(steps=steps), Setting(name="g8")
    protocol = dataclasses.replace(protocol, curve_eval_prompts=0)  # TRL does no per-step evaluation
    task = Addition(protocol.digits, protocol.held_out)
    policy, reference = (build_policy(2, 64, 4, task.prompt_len + task.answer_len, 0) for _ in range(2))
    cls = registry.get("rlvr/grpo")
    trainer = GRPOTrainer(policy, reference, task, cls(cls.Params()), protocol, setting, 0, torch.Generator().manual_seed(3))
    for _ in range(steps + 1):
        trainer.train_step()
    return {"rollout_s": trainer.curves["rollout_s"][1:], "update_s": trainer.curves["update_s"][1:],
            "note": "rollout = sampling with the policy's logits kept + verifier + reference log-probs; first step dropped (warm-up)"}


def _time_trl(steps: int, adapter: bool = False) -> dict:
    import time as _time

    import torch
    import trl
    from datasets import Dataset
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast, TrainerCallback

    from entrobench.protocols.rlvr.task import VOCAB, Addition, decode, verify

    vocab = {ch: i for i, ch in enumerate(VOCAB)} | {"<pad>": len(VOCAB)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<pad>")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(vocab), n_positions=16, n_embd=64, n_layer=2, n_head=4, resid_pdrop=0.0,
                                       embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=len(VOCAB), eos_token_id=len(VOCAB), pad_token_id=len(VOCAB)))
    task = Addition(3, 512)
    pairs = task.sample_pairs(32 * (steps + 2), torch.Generator().manual_seed(0))
    prompts = decode(task.prompts(pairs))
    data = Dataset.from_dict({"prompt": prompts, "target": task.targets(pairs).tolist()})

    def reward(prompts, completions, target, **_):
        return [float(verify(c, t)) for c, t in zip(completions, target)]

    config = trl.GRPOConfig(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=128, steps_per_generation=2, gradient_accumulation_steps=1,
                            num_generations=8, max_completion_length=4, temperature=1.0, beta=0.0, learning_rate=1e-3, adam_beta2=0.99,
                            max_grad_norm=1.0, loss_type="dapo", max_steps=2 * (steps + 1), logging_steps=10**6, save_strategy="no",
                            report_to="none", use_cpu=True, bf16=False, gradient_checkpointing=False, seed=0, shuffle_dataset=False)
    if adapter:  # the same trainer with our loss module in place of its own
        from entrobench.protocols.rlvr.engine import PolicyLossTrainer
        from methods import registry

        grpo = registry.get("rlvr/grpo")
        trainer = PolicyLossTrainer(model=model, reward_funcs=reward, args=config, train_dataset=data, processing_class=tokenizer,
                                    policy_loss=grpo(grpo.Params()))
    else:
        trainer = trl.GRPOTrainer(model=model, reward_funcs=reward, args=config, train_dataset=data, processing_class=tokenizer)
    rollout_s, step_s = [], []
    generate = trainer._generate_and_score_completions

    def timed_generate(*a, **k):
        t0 = _time.perf_counter()
        out = generate(*a, **k)
        rollout_s.append(_time.perf_counter() - t0)
        return out

    trainer._generate_and_score_completions = timed_generate

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *_, **__):
            self.t0 = _time.perf_counter()

        def on_step_end(self, *_, **__):
            step_s.append(_time.perf_counter() - self.t0)

    trainer.add_callback(StepTimer())
    trainer.train()
    # one rollout per 2 optimizer steps: a GRPO step of ours = 2 of TRL's optimizer steps
    per_rollout = [step_s[i] + step_s[i + 1] for i in range(0, len(step_s) - 1, 2)]
    rollouts = rollout_s[: len(per_rollout)]
    return {"version": trl.__version__, "rollout_s": rollouts[1:], "update_s": [t - r for t, r in zip(per_rollout, rollouts)][1:],
            "note": ("TRL with our rlvr/grpo through engine.PolicyLossTrainer; " if adapter else "TRL with its own GRPO loss (loss_type dapo); ")
            + "generate() rollouts; rollout = _generate_and_score_completions, update = rest of the two optimizer steps; first step dropped"}


def decoding(args) -> None:
    """Tokens/s of `generate` per sampler: same model, prompts, batch and length (EOS ignored, so
    every row generates max_new_tokens), ours and transformers' own top-p, min-p and Top-H, at
    each temperature; the cost of the logits processors alone on the model's own next-token
    logits for those prompts, where samplers differ most; and how many tokens each sampler keeps
    on the next-token distributions along sampled continuations of those prompts."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList

    from entrobench.protocols.decoding.family import TASKS_DIR
    from methods import registry

    torch.set_num_threads(1)
    folder = _decoding_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": r["prompt"]}], tokenize=False, add_generation_prompt=True)
               for r in map(json.loads, (TASKS_DIR / "open_ended.jsonl").read_text().splitlines())][: args.batch]
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    with torch.no_grad():
        next_token_logits = model(**batch).logits[:, -1].float()
    samplers = {name.split("/")[1]: registry.get(name) for name in registry.available("decoding")}
    load_start = os.getloadavg()[0]  # on a shared machine the absolute figures move with the load; the ratios much less
    default_alpha = registry.get("decoding/top_h").Params().alpha
    by_temperature = {}
    for temperature in args.temperatures:
        off = {"do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0}
        configs = {name: {**off, "logits_processor": LogitsProcessorList(cls(cls.Params()).processors(temperature))} for name, cls in samplers.items()}
        hf_off = {**off, "temperature": temperature}
        configs["hf_top_p"] = {**hf_off, "top_p": 0.9}
        configs["hf_min_p"] = {**hf_off, "min_p": 0.1}
        configs["hf_top_h"] = {**hf_off, "top_h": default_alpha}  # transformers' TopHLogitsWarper (renormalizes over its 100 candidates)
        # wall and CPU seconds: on a shared machine other jobs stretch the wall time; the process's
        # own CPU time (one thread) is what the sampler costs, and what the ratios are taken from
        wall = {name: [] for name in configs}
        cpu = {name: [] for name in configs}
        for repeat in range(args.repeats + 1):  # round-robin, so load that drifts hits every sampler alike; round 0 warms up
            for name, kwargs in configs.items():
                torch.manual_seed(repeat)
                start, start_cpu = time.perf_counter(), time.process_time()
                with torch.no_grad():
                    model.generate(**batch, max_new_tokens=args.tokens, min_new_tokens=args.tokens, pad_token_id=tokenizer.eos_token_id, **kwargs)
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
        generated = len(prompts) * args.tokens
        tokens_per_s = {name: round(generated / statistics.median(taken[1:]), 1) for name, taken in wall.items()}
        tokens_per_cpu_s = {name: round(generated / statistics.median(taken[1:]), 1) for name, taken in cpu.items()}
        processor_us = {}
        for name, cls in samplers.items():
            procs = cls(cls.Params()).processors(temperature)
            start_cpu = time.process_time()
            for _ in range(args.steps):
                scores = next_token_logits
                for proc in procs:
                    scores = proc(None, scores)
            processor_us[name] = round(1e6 * (time.process_time() - start_cpu) / args.steps, 1)
        # Top-H's CPU cost per token relative to another sampler: below 1, Top-H is the cheaper
        by_temperature[str(temperature)] = {
            "tokens_per_s": tokens_per_s,
            "tokens_per_cpu_s": tokens_per_cpu_s,
            "processor_cpu_us_per_step": processor_us,
            "top_h_cost_per_token_relative_to": {other: round(tokens_per_cpu_s[other] / tokens_per_cpu_s["top_h"], 3)
                                                 for other in ("top_p", "hf_top_p", "min_p", "hf_min_p", "hf_top_h", "top_h_renorm")},
            "top_h_processor_cost_relative_to": {other: round(processor_us["top_h"] / processor_us[other], 3) for other in ("top_p", "min_p", "top_h_renorm")},
        }
        print(f"T {temperature}: " + "  ".join(f"{name} {v}" for name, v in tokens_per_cpu_s.items()) + " tokens per CPU second")
    write("decoding_throughput", {
        "what": f"generated tokens per second (wall) and per CPU second of generate, SmolLM2-135M-Instruct float32, 1 thread, batch {len(prompts)},"
                f" {args.tokens} new tokens, median of {args.repeats}; processor CPU cost on the model's next-token logits for the same prompts,"
                f" {args.steps} calls; hf_* are transformers' own warpers (top_p 0.9, min_p 0.1, top_h {default_alpha}); ours at their card defaults;"
                " ratios from CPU time",
        "by_temperature": by_temperature,
        "load_average_1min": {"start": round(load_start, 1), "end": round(os.getloadavg()[0], 1)},
        "kept_tokens": kept_set_sizes(model, batch, tokenizer.eos_token_id, samplers, args),
        "target": "top-H costs at most 1.1x top-p per token",
    })


def _decoding_model(folder: str) -> Path:
    """The decoding family's model folder: `folder`, else the DAG's cache folder, converted if absent."""
    from entrobench.models import packaged
    from entrobench.protocols.decoding.family import Protocol

    name = Protocol().model
    path = Path(folder) if folder else REPO / packaged.model_build(name).path
    if not (path / "config.json").is_file():
        print(packaged.convert_model(packaged.model_config(name), path))
    return path


def kept_set_sizes(model, batch, pad_token_id: int, samplers: dict, args) -> dict:
    """How many tokens each sampler keeps, on the model's next-token distributions along one sampled
    continuation per prompt (T 1, seed 0, EOS ignored): mean, median and max over those rows, at
    each temperature in args.kept_temperatures, and how many rows keep the whole vocabulary."""
    import torch

    torch.manual_seed(0)
    with torch.no_grad():
        out = model.generate(**batch, do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=args.kept_rows_per_prompt,
                             min_new_tokens=args.kept_rows_per_prompt, pad_token_id=pad_token_id, output_logits=True, return_dict_in_generate=True)
    rows = torch.cat([step.float() for step in out.logits])  # (new tokens x prompts, vocab), the model's raw logits
    figures = {"rows": rows.shape[0], "vocab": rows.shape[1], "by_temperature": {}}
    for temperature in args.kept_temperatures:
        per_sampler = {}
        for name in ("top_h", "top_h_renorm", "top_p", "min_p", "top_k"):
            cls = samplers[name]
            scores = rows.clone()
            for proc in cls(cls.Params()).processors(temperature):
                scores = proc(None, scores)
            kept = torch.isfinite(scores).sum(-1).float()
            per_sampler[name] = {"mean": round(float(kept.mean()), 1), "median": float(kept.median()), "max": int(kept.max()),
                                 "whole_vocab_rows": int((kept == rows.shape[1]).sum())}
        figures["by_temperature"][str(temperature)] = per_sampler
        print(f"kept tokens at T {temperature}: " + "  ".join(f"{n} {v['mean']}" for n, v in per_sampler.items()))
    return figures


# What a CPU without AVX-512 or AMX (most laptops) gives torch: oneDNN and ATen's own kernels
# both stop at AVX2. Read when torch loads, so a run under it is a fresh process.
AVX2_ONLY = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}


def decoding_step(args) -> dict:
    """Seconds of SmolLM2-135M's forward on one thread, float32 beside bfloat16, at several batch
    sizes: the prefill of `prompt` tokens per row, and one decode step over that KV cache (median
    of `repeats`). A decoding smoke cell is ~105 decode steps at batch <= 20 plus ~50 prefills:
    these say how much a batch shared by several samplers, or bfloat16, could take off.
    `--isa avx2` measures the same as on a CPU without AVX-512 or AMX, where bfloat16 has no
    native matrix unit; each ISA's figures are kept beside the others'."""
    if args.isa == "avx2" and any(os.environ.get(k) != v for k, v in AVX2_ONLY.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **AVX2_ONLY})
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(1)
    folder = _decoding_model(args.model)
    figures = {"setting": {"prompt_tokens": args.prompt, "repeats": args.repeats, "threads": 1},
               "isa": torch.backends.cpu.get_cpu_capability(), "load_start": os.getloadavg()[0], "runs": []}
    for dtype in (torch.float32, torch.bfloat16):
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).eval()
        for batch in args.batches:
            ids = torch.randint(0, model.config.vocab_size, (batch, args.prompt), generator=torch.Generator().manual_seed(0))
            step = ids[:, -1:]
            prefill, decode = [], []  # (wall, CPU) seconds: on a shared machine the wall time stretches, one thread's CPU time much less
            with torch.no_grad():
                for _ in range(args.repeats):
                    start = time.perf_counter(), time.process_time()
                    cache = model(ids, use_cache=True, logits_to_keep=1).past_key_values
                    prefill.append((time.perf_counter() - start[0], time.process_time() - start[1]))
                    start = time.perf_counter(), time.process_time()
                    model(step, past_key_values=cache, use_cache=True)
                    decode.append((time.perf_counter() - start[0], time.process_time() - start[1]))
            run = {"dtype": str(dtype).removeprefix("torch."), "batch": batch}
            for name, times in (("prefill", prefill), ("decode_step", decode)):
                run[f"{name}_s"] = round(statistics.median(t[0] for t in times), 4)
                run[f"{name}_cpu_s"] = round(statistics.median(t[1] for t in times), 4)
            run["decode_cpu_s_per_row"] = round(run["decode_step_cpu_s"] / batch, 5)
            figures["runs"].append(run)
            print(run)
    figures["load_end"] = os.getloadavg()[0]
    by_isa = {**read("decoding_step").get("by_isa", {}), args.isa: {"date": time.strftime("%Y-%m-%d %H:%M"), **figures}}
    write("decoding_step", {"by_isa": by_isa})
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="bench", required=True)
    p = sub.add_parser("throughput")
    p.add_argument("--images", type=int, default=512)
    p.set_defaults(func=throughput)
    p = sub.add_parser("smoke")
    p.add_argument("--from-log", default="", help="profile this finished run's snakemake log instead of running (wall time then unknown)")
    p.set_defaults(func=smoke)
    p = sub.add_parser("noop")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--checkouts", nargs="*", default=[], help="checkouts with finished results, timed alternately (default: this one)")
    p.add_argument("--venv", default="", help="the venv make uses (default: each checkout's .venv)")
    p.add_argument("--conditions", default="", help="what else ran on the machine, whether slurm-wlm is installed: written with the figures")
    p.set_defaults(func=noop)
    p = sub.add_parser("rlvr-step")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3, help="alternating runs of TRL's own GRPO and the adapter")
    p.set_defaults(func=rlvr_step)
    p = sub.add_parser("decoding")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 2.0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=50, help="logits-processor calls timed per sampler")
    p.add_argument("--kept-temperatures", type=float, nargs="+", default=[0.3, 1.0, 2.0])
    p.add_argument("--kept-rows-per-prompt", type=int, default=64, help="sampled continuation length whose next-token rows are measured")
    p.add_argument("--model", default="", help="a converted model folder (default: the DAG's cache folder, converted if absent)")
    p.set_defaults(func=decoding)
    p = sub.add_parser("decoding-step")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 20, 60])
    p.add_argument("--prompt", type=int, default=80, help="prompt tokens per row (eb_add2 with its chat template and worked example: 73)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--model", default="", help="a converted model folder (default: the DAG's cache folder, converted if absent)")
    p.add_argument("--isa", choices=["native", "avx2"], default="native", help="avx2: as on a CPU without AVX-512 or AMX")
    p.set_defaults(func=decoding_step)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
