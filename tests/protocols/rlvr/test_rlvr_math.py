"""The full scale's data, reward and evaluation on local files: the math verifier on hand-made
answers, staging hub rows into the data root's JSONL, the benchmarks' lm-eval tasks with the
paper's sampling, and one math cell through the command line on the tiny chat model (TRL,
math-verify reward, lm-eval benchmarks, avg_acc)."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from entrobench import record
from entrobench.protocols.rlvr.benchmarks import BENCHMARKS, task_config
from entrobench.protocols.rlvr.math_answers import final_answer, is_correct
from entrobench.protocols.rlvr.math_data import EVAL_SETS, INSTRUCTION, TRAIN_SETS, jsonl_path, read_rows, stage

REPO = Path(__file__).resolve().parents[3]
CARD = REPO / "configs" / "rlvr" / "clipcov_cui2025.yaml"


@pytest.mark.parametrize("response, reference, ok", [
    ("2x = 1, so x = 1/2.\nAnswer: 0.5", "\\frac{1}{2}", True),        # the same number written two ways
    ("Answer: $\\frac{3}{4}$", "0.75", True),
    ("so the side is \\boxed{\\sqrt{2}}.", "2^{1/2}", True),            # no Answer line: the last box
    ("Answer: \\boxed{7}", "7", True),
    ("Answer: 35", "34", False),
    ("The sum is 34.", "34", False),                                    # no final answer given: no reward
    ("First Answer: 12\nbut then\nAnswer: 13", "13", True),             # the last Answer line counts
    ("Answer: (1, 2]", "(1,2]", True),
    ("Answer: \\{1,2,3\\}", "\\{3,2,1\\}", True),                      # sets in any order
    ("Answer: 1,000", "1000", True),
    ("\\boxed{\\frac{1}{\\sqrt{3}}}", "\\frac{\\sqrt{3}}{3}", True),    # rationalized
    ("Answer: 2\\pi", "3\\pi", False),
])
def test_the_math_reward_reads_the_final_answer_and_compares_symbolically(response, reference, ok):
    assert is_correct(response, reference) is ok


def test_final_answer_takes_the_answer_line_else_the_last_box():
    assert final_answer("Answer: $42$.") == "42"
    assert final_answer("\\boxed{a} then \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert final_answer("\\boxed{unclosed") is None and final_answer("no answer") is None


def test_staging_writes_one_jsonl_per_set_from_the_hubs_rows(tmp_path):
    dapo = [{"prompt": [{"role": "user", "content": INSTRUCTION.format(problem=f"What is {i % 2} + 1?")}],
             "reward_model": {"ground_truth": str(i % 2 + 1)}} for i in range(6)]  # the hub's set repeats its prompts
    amc = [{"problem": "How many?", "answer": 142.0}, {"problem": "Which?", "answer": 3.5}]
    olympiad = [{"question": "Find x.", "final_answer": ["$\\frac{1}{2}$"]}]
    calls = []

    def load(repo, config=None, split=None):
        calls.append((repo, config, split))
        return {"BytedTsinghua-SIA/DAPO-Math-17k": dapo, "AI-MO/aimo-validation-amc": amc, "Hothan/OlympiadBench": olympiad}[repo]

    stage(["dapo_math_17k", "amc23", "olympiadbench"], tmp_path, load=load, log=lambda _: None)
    rows = read_rows(tmp_path, "dapo_math_17k")
    assert [r["answer"] for r in rows] == ["1", "2"]  # one row per distinct prompt
    assert rows[0]["prompt"] == dapo[0]["prompt"][0]["content"]  # DAPO's prompt as it is
    amc_rows = read_rows(tmp_path, "amc23")
    assert [r["answer"] for r in amc_rows] == ["142", "3.5"] and amc_rows[0]["prompt"] == INSTRUCTION.format(problem="How many?")
    assert read_rows(tmp_path, "olympiadbench")[0]["answer"] == "$\\frac{1}{2}$"
    assert ("Hothan/OlympiadBench", "OE_TO_maths_en_COMP", "train") in calls
    stage(["amc23"], tmp_path, load=lambda *a, **k: pytest.fail("staged already: not fetched again"), log=lambda _: None)


def test_a_hub_set_whose_fields_changed_fails_in_one_line(tmp_path):
    with pytest.raises(ValueError, match=r"math-ai/aime25 \(aime25\): no field 'problem' in its rows \(they have: question, solution\)"):
        stage(["aime25"], tmp_path, load=lambda *a, **k: [{"question": "?", "solution": "1"}], log=lambda _: None)
    assert not jsonl_path(tmp_path, "aime25").exists()
    with pytest.raises(FileNotFoundError, match="math_data aime24 --data-root"):
        read_rows(tmp_path, "aime24")


def test_lm_evals_own_tasks_read_the_hub_data_we_stage():
    """aime24, aime25 and minerva_math500 ship with lm-eval; ours read the same hub datasets."""
    import lm_eval

    tasks = Path(lm_eval.__file__).parent / "tasks"
    for name, bench in BENCHMARKS.items():
        if bench.lm_eval_task:
            found = [p for p in tasks.rglob("*.yaml") if re.search(rf"^task: {bench.lm_eval_task}\s*$", p.read_text(), re.M)]
            assert found, bench.lm_eval_task
            text = "".join(p.read_text() for p in [found[0], *found[0].parent.glob("*.yaml")])
            assert f"dataset_path: {EVAL_SETS[name].repo}" in text, name


def test_benchmark_tasks_carry_the_papers_sampling(tmp_path):
    aime = task_config("aime24", tmp_path, max_new_tokens=8192)
    assert aime["repeats"] == 32 and aime["filter_list"][0]["filter"][0]["k"] == 32
    assert aime["generation_kwargs"] | {"until": []} == {"until": [], "do_sample": True, "temperature": 0.6, "max_gen_toks": 8192}
    math500 = task_config("math500", tmp_path, max_new_tokens=8192)
    assert math500["repeats"] == 1 and math500["generation_kwargs"]["do_sample"] is False
    assert math500["dataset_kwargs"]["data_files"]["test"] == str(jsonl_path(tmp_path, "math500").resolve())
    assert {b.column for b in BENCHMARKS.values()} == {"AIME24", "AIME25", "AMC", "MATH-500", "OMNI-MATH", "OlympiadBench", "Minerva"}
    assert set(TRAIN_SETS) == {"dapo_math_17k"}


@pytest.mark.slow
def test_a_math_cell_through_the_command_line_trains_and_scores_the_benchmarks(tmp_path, tiny_chat_lm, monkeypatch, run_cell_with_builds):
    """The full scale's path on CPU: staged DAPO rows, TRL with our Clip-Cov, the math-verify reward,
    AIME (32 samples at T 0.6) and MATH-500 (greedy) through lm-eval, avg_acc their mean."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    data = tmp_path / "data"
    math_dir = jsonl_path(data, "x").parent
    math_dir.mkdir(parents=True)
    problems = [{"id": f"p{i}", "prompt": INSTRUCTION.format(problem=f"What is {i} + {i}?"), "answer": str(2 * i)} for i in range(6)]
    for name in ("dapo_math_17k", "aime24", "math500"):
        (math_dir / f"{name}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in problems[:3 if name != "dapo_math_17k" else 6]))
    shutil.copytree(tiny_chat_lm, data / "models" / "tiny_lm")
    card = yaml.safe_load(CARD.read_text())
    card["scales"]["tiny"].update(datasets=["dapo_math_17k"], methods=["clip_cov"], seeds=[0])
    card["scales"]["tiny"]["protocol"].update(model="models/tiny_lm", engine="trl", max_new_tokens=8, steps=2, prompts_per_step=2, minibatches=2,
                                              benchmarks=["aime24", "math500"], eval_batch_size=32, smooth=2)
    (tmp_path / "configs" / "rlvr").mkdir(parents=True)
    card_path = tmp_path / "configs" / "rlvr" / CARD.name
    card_path.write_text(yaml.safe_dump(card))
    out = tmp_path / "results" / "cell.json"

    assert run_cell_with_builds(card_path, "tiny", "dapo_math_17k/g8_t1/clip_cov/seed0", tmp_path / "results", out, data_root=data) == 0
    rec = record.read(out)
    assert rec["status"] == record.OK, rec.get("reason")
    metrics = rec["metrics"]
    assert 0 <= metrics["acc_aime24"] <= 1 and 0 <= metrics["acc_math500"] <= 1
    assert metrics["avg_acc"] == pytest.approx((metrics["acc_aime24"] + metrics["acc_math500"]) / 2)
    assert len(rec["curves"]["reward"]) == 2 and all(0 <= r <= 1 for r in rec["curves"]["reward"])
    aime = [s for s in rec["samples"] if s["task"] == "eb_math_aime24"]
    assert aime and all(len(s["responses"]) == 32 for s in aime)  # avg@32
    assert rec["data_fingerprint"] == "dapo_math_17k+aime24+math500"


def test_table2_lays_out_ours_beside_the_papers_numbers(tmp_path):
    from entrobench.card import load_card
    from entrobench.protocols.rlvr.plots import table2

    card = load_card(CARD)
    benchmarks = card.scale("full").protocol.benchmarks
    records = [{"dataset": "dapo_math_17k", "setting": "g8_t1", "method": "grpo", "seed": seed, "status": record.OK,
                "metrics": {**{f"acc_{b}": 0.20 + 0.02 * seed for b in benchmarks}, "avg_acc": 0.20 + 0.02 * seed}} for seed in (0, 1)]
    text = table2(card, "full", records, benchmarks, tmp_path / "t.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| method"))
    assert header == "| method | AIME24 | AIME25 | AMC | MATH-500 | OMNI-MATH | OlympiadBench | Minerva | Avg. |"
    grpo = next(line for line in text.splitlines() if line.startswith("| GRPO |"))
    assert grpo.count("21.0 ± 12.7 (n=2)") == 8  # mean 0.21, t(0.975, 1) x 0.01414 = 0.127
    assert "(21.2)" in grpo and "(38.6)" in grpo  # AIME24 and Avg. as printed in Table 2
    lp_reg = next(line for line in text.splitlines() if line.startswith("| Lp-Reg |"))
    assert lp_reg.count("n/a") == 8 and "(" not in lp_reg  # no run yet, and not in the paper's table
