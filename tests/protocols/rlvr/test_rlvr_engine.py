"""The engine path (engine.py, TRL's GRPOTrainer with our loss modules) on the tiny chat model, on
CPU: one cell through the command line writes a record with the engine's per-step curves; a
SIGTERM saves the engine's checkpoint at the end of the GRPO step and the rerun resumes from it
(the same prompts and samples as an uninterrupted run; not bit for bit); what it cannot run here
is skipped with the reason."""
from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import pytest
import yaml

from entrobench import checkpoint, record
from entrobench.protocols.rlvr import engine
from entrobench.protocols.rlvr.engine_tasks import check_runnable
from entrobench.protocols.rlvr.family import Protocol, Setting
from entrobench.record import Skip

REPO = Path(__file__).resolve().parents[3]
CARD = REPO / "configs" / "rlvr" / "clipcov_cui2025.yaml"
TINY_ENGINE = dict(model="tiny_lm", engine="trl", digits=2, held_out=8, max_new_tokens=8, steps=3, prompts_per_step=2, minibatches=2,
                   eval_samples=2, eval_batch_size=16, curve_eval_prompts=0, smooth=2)


@pytest.mark.slow
def test_an_engine_cell_through_the_command_line_records_the_engines_curves(tmp_path, tiny_chat_lm, monkeypatch, run_cell_with_builds):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    card = yaml.safe_load(CARD.read_text())
    card["scales"]["tiny"].update(datasets=["addition_chat"])
    card["scales"]["tiny"]["protocol"].update(TINY_ENGINE)
    (tmp_path / "configs" / "rlvr").mkdir(parents=True)
    card_path = tmp_path / "configs" / "rlvr" / CARD.name
    card_path.write_text(yaml.safe_dump(card))
    shutil.copytree(tiny_chat_lm, tmp_path / "data" / "tiny_lm")
    out = tmp_path / "results" / "cell.json"

    assert run_cell_with_builds(card_path, "tiny", "addition_chat/g8_t1/kl_cov/seed0", tmp_path / "results", out, data_root=tmp_path / "data") == 0
    rec = record.read(out)
    assert rec["status"] == record.OK, rec.get("reason")
    assert rec["engine"]["engine"] == f"trl {engine.trl.__version__}" and rec["engine"]["world_size"] == 1 and rec["device"] == "cpu"
    curves = rec["curves"]
    assert set(curves) >= {"entropy", "reward", "cov_mean", "clip_frac", "selected_frac", "response_len", "grad_norm", "rollout_s", "update_s"}
    assert all(len(v) == TINY_ENGINE["steps"] for v in curves.values())
    assert all(0 < h < 10 for h in curves["entropy"]) and all(0 < n <= 8 for n in curves["response_len"])
    assert all(math.isnan(k) for k in curves["kl_ref"])  # KL-Cov keeps no reference model: the engine loads none
    metrics = rec["metrics"]
    assert {"pass_at_1", "accuracy", "accuracy_start", "entropy_start", "entropy_final", "law_r2", "train_s", "eval_s"} <= set(metrics)
    assert metrics["entropy_start"] == curves["entropy"][0]
    assert not engine.engine_folder(checkpoint.beside(out)).exists()  # removed once the run was evaluated


def _spec(folder: Path, model: Path, method: str = "rlvr/clip_cov") -> dict:
    protocol = Protocol(**TINY_ENGINE)
    return {"protocol": dataclasses.asdict(protocol), "setting": dataclasses.asdict(Setting(name="g4", group_size=4)), "seed": 0,
            "method": method, "params": {"cov_lb": 0.0, "detach_frac": 0.2}, "dataset": "addition_chat", "model": str(model),
            "folder": str(folder), "data_root": None, "label": "test"}


@pytest.fixture
def learnable(monkeypatch):
    """A reward the untrained tiny model earns now and then (a "1" in its answer), so the runs learn."""
    from entrobench.protocols.rlvr import engine_tasks

    original = engine_tasks.engine_task

    def task(spec, tokenizer):
        return dataclasses.replace(original(spec, tokenizer), reward=lambda prompts, completions, **_: [float("1" in c) for c in completions])

    monkeypatch.setattr(engine_tasks, "engine_task", task)


def test_sigterm_saves_at_the_end_of_the_grpo_step_and_the_rerun_resumes_there(tmp_path, tiny_chat_lm, monkeypatch, learnable):
    straight = tmp_path / "straight"
    engine.train(_spec(straight, tiny_chat_lm))
    expected = json.loads((straight / engine.RESULT).read_text())["curves"]
    assert any(g > 0 for g in expected["grad_norm"]) and any(abs(x) > 0 for x in expected["pg_loss"])  # the policy moves

    killed = tmp_path / "killed"

    def sigterm_in_the_second_update(self, args, state, control, **kwargs):
        if state.global_step == 1:  # the second optimizer step of GRPO step 0: the save waits for the step's end
            self._on_sigterm(None, None)

    monkeypatch.setattr(engine.Walltime, "on_step_begin", sigterm_in_the_second_update, raising=False)
    with pytest.raises(SystemExit) as stop:
        engine.train(_spec(killed, tiny_chat_lm))
    assert stop.value.code == checkpoint.TERMINATED
    assert [p.name for p in killed.glob("checkpoint-*")] == ["checkpoint-2"]  # 2 updates = one GRPO step
    monkeypatch.delattr(engine.Walltime, "on_step_begin")

    generations = []
    original = engine.PolicyLossTrainer._generate_and_score_completions
    monkeypatch.setattr(engine.PolicyLossTrainer, "_generate_and_score_completions", lambda self, inputs: generations.append(1) or original(self, inputs))
    engine.train(_spec(killed, tiny_chat_lm))
    assert len(generations) == TINY_ENGINE["steps"] - 1  # resumed after step 0, not started over
    resumed = json.loads((killed / engine.RESULT).read_text())["curves"]
    logged = ("reward", "entropy", "cov_mean", "clip_frac", "selected_frac", "pg_loss", "grad_norm", "response_len")
    assert [resumed[k][0] for k in logged] == [expected[k][0] for k in logged]  # step 0 as logged before the kill
    # after the resume: the same prompts and samples (weights, data position and RNG restored by the engine) ...
    assert resumed["reward"] == expected["reward"] and resumed["response_len"] == expected["response_len"]
    assert resumed["entropy"] == pytest.approx(expected["entropy"], rel=1e-4)
    # ... but not bit for bit: the engine's shuffle of a generation batch into minibatches drew other
    # orders after the resume (grad norm 0.6693 against 0.6685 on step 1), unlike the suite's trainer
    assert resumed["grad_norm"][1] == pytest.approx(expected["grad_norm"][1], rel=0.05)


def test_what_this_machine_cannot_run_is_skipped_with_the_reason(tmp_path):
    with pytest.raises(Skip, match="rollout vllm needs GPUs and vLLM"):
        check_runnable(Protocol(model="m", engine="trl", rollout="vllm"), "addition_chat", None)
    with pytest.raises(Skip, match=r"not staged under the data root \(dapo_math_17k, aime24\).*math_data --data-root"):
        check_runnable(Protocol(model="m", engine="trl", benchmarks=["aime24"]), "dapo_math_17k", tmp_path)


def test_the_accelerate_config_is_trls_own_with_the_jobs_gpus_and_precision():
    fsdp = engine.accelerate_config(Protocol(model="m", engine="trl", sharding="fsdp", precision="bf16", gradient_checkpointing=True), 8)
    assert fsdp["distributed_type"] == "FSDP" and fsdp["fsdp_config"]["fsdp_version"] == 2
    assert (fsdp["num_processes"], fsdp["num_machines"], fsdp["mixed_precision"]) == (8, 1, "bf16")
    assert fsdp["fsdp_config"]["fsdp_activation_checkpointing"] is False  # the trainer's gradient checkpointing does it
    zero3 = engine.accelerate_config(Protocol(model="m", engine="trl", sharding="zero3"), 4)
    assert zero3["deepspeed_config"]["zero_stage"] == 3 and zero3["num_processes"] == 4 and zero3["mixed_precision"] == "no"


def test_a_launched_run_passes_sigterm_to_its_group_and_exits_143(tmp_path, monkeypatch):
    """The multi-GPU path: `accelerate launch` of this module's `train`; the job's SIGTERM reaches
    the launched group (here a stand-in that saves and exits 143 as train does)."""
    import os
    import signal
    import subprocess
    import sys
    import threading

    started, real_popen = [], subprocess.Popen

    def popen(command, start_new_session):
        assert command[:3] == [sys.executable, "-m", "accelerate.commands.launch"] and command[-3:-1] == ["-m", "entrobench.protocols.rlvr.engine"]
        assert yaml.safe_load((tmp_path / "accelerate.yaml").read_text())["num_processes"] == 2
        child = real_popen([sys.executable, "-c", "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *_: sys.exit(143)); "
                                  "print('up', flush=True); time.sleep(60)"], start_new_session=start_new_session, stdout=subprocess.PIPE)
        child.stdout.readline()
        started.append(child)
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()  # the walltime's signal, to the cell's process
        return child

    monkeypatch.setattr(engine.subprocess, "Popen", popen)
    with pytest.raises(SystemExit) as stop:
        engine.launch({"folder": str(tmp_path)}, 2, Protocol(model="m", engine="trl", sharding="fsdp"))
    assert stop.value.code == checkpoint.TERMINATED and started[0].returncode == checkpoint.TERMINATED
    assert json.loads((tmp_path / "spec.json").read_text()) == {"folder": str(tmp_path)}


def test_the_gpu_bench_runs_the_adapter_on_cpu_with_the_tiny_model(tmp_path, tiny_chat_lm):
    """bench/rlvr_gpu.py is the GPU check (vLLM rollouts of a 0.5B-1.5B model): the same code on
    CPU with transformers rollouts writes its figures."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("rlvr_gpu", REPO / "bench" / "rlvr_gpu.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "rlvr_gpu.json"
    assert bench.main(["--model", str(tiny_chat_lm), "--rollout", "hf", "--steps", "2", "--prompts", "2", "--group", "4",
                       "--max-new-tokens", "8", "--out", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["setting"]["device"] == "cpu" and figures["setting"]["engine"].startswith("trl ")
    assert figures["rollout_s_median"] > 0 and figures["update_s_median"] >= 0 and len(figures["curves"]["entropy"]) == 2
    with pytest.raises(SystemExit):
        bench.main(["--model", str(tmp_path / "nowhere")])
