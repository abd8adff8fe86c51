"""The local lm-eval tasks: items fixed by the protocol, drawn without replacement, GSM8K skipped
without a data root; scoring of numbers and names; distinct-n and self-BLEU on small sets."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from entrobench.protocols.decoding.spec import Protocol
from entrobench.protocols.decoding.task_data import TASKS_DIR, write_tasks

_spec = importlib.util.spec_from_file_location("decoding_task_utils", TASKS_DIR / "utils.py")
utils = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(utils)


def _read(path: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in path.read_text().splitlines()]


def test_items_are_fixed_by_the_protocol_and_drawn_without_replacement(tmp_path):
    protocol = Protocol(n_items={"eb_add2": 300, "eb_capitals": 5, "eb_open_ended": 3, "eb_gsm8k": 2})
    tasks, skipped = write_tasks(protocol, None, tmp_path / "a")
    write_tasks(protocol, None, tmp_path / "b")
    first, second = _read(tmp_path / "a" / "add2.jsonl"), _read(tmp_path / "b" / "add2.jsonl")
    assert first == second and len(first) == 300
    assert len({(r["a"], r["b"]) for r in first}) == 300
    assert all(10 <= r["a"] <= 99 and 10 <= r["b"] <= 99 and r["target"] == r["a"] + r["b"] for r in first)
    assert (34, 51) not in {(r["a"], r["b"]) for r in first}  # the worked example is never an item
    assert len(_read(tmp_path / "a" / "capitals.jsonl")) == 5
    assert tasks == ["eb_capitals", "eb_add2", "eb_open_ended"]
    assert "eb_gsm8k" in skipped and "gsm8k" in skipped["eb_gsm8k"]


def test_yamls_get_absolute_data_paths(tmp_path):
    write_tasks(Protocol(n_items={"eb_add2": 3}), None, tmp_path)
    text = (tmp_path / "eb_add2.yaml").read_text().replace("!function", "")
    files = yaml.safe_load(text)["dataset_kwargs"]["data_files"]
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in files.values())


def test_max_gen_toks_caps_one_task_and_leaves_the_others(tmp_path):
    write_tasks(Protocol(tasks=["eb_capitals", "eb_add2"], n_items={"eb_add2": 3}, max_gen_toks={"eb_add2": 7}), None, tmp_path)
    assert yaml.safe_load((tmp_path / "eb_add2.yaml").read_text().replace("!function", ""))["generation_kwargs"]["max_gen_toks"] == 7
    capitals = yaml.safe_load((TASKS_DIR / "eb_capitals.yaml").read_text().replace("!function", ""))["generation_kwargs"]["max_gen_toks"]
    assert yaml.safe_load((tmp_path / "eb_capitals.yaml").read_text().replace("!function", ""))["generation_kwargs"]["max_gen_toks"] == capitals
    with pytest.raises(ValueError, match="max_gen_toks: unknown task 'gsm8k'"):
        Protocol(max_gen_toks={"gsm8k": 7})


def test_gsm8k_subset_reads_the_data_root(tmp_path):
    root = tmp_path / "root"
    (root / "gsm8k").mkdir(parents=True)
    (root / "gsm8k" / "test.jsonl").write_text('{"question": "q1", "answer": "x\\n#### 1,200"}\n{"question": "q2", "answer": "#### 7"}\n')
    tasks, skipped = write_tasks(Protocol(tasks=["eb_gsm8k"], accuracy_tasks=[], n_items={"eb_gsm8k": 1}), root, tmp_path / "out")
    assert tasks == ["eb_gsm8k"] and not skipped
    rows = _read(tmp_path / "out" / "gsm8k.jsonl")
    assert len(rows) == 1 and rows[0]["target"] in ("1200", "7")


@pytest.mark.parametrize("text, value", [("12 + 30 = 42. The answer is 42.", 42), ("so 7 and then 9", 9), ("The answer is $1,200.", 1200), ("no number", None)])
def test_numbers_are_read_from_answer_is_else_the_last_number(text, value):
    assert utils.extract_number(text) == value


def test_names_match_as_whole_words_ignoring_case():
    doc = {"answers": ["New Delhi", "Delhi"]}
    assert utils.score_names(doc, ["It is new delhi."])["acc"] == 1.0
    assert utils.score_names({"answers": ["Rome"]}, ["Romeo"])["acc"] == 0.0


def test_distinct_n_and_self_bleu():
    same = ["the cat sat on the mat"] * 3
    different = ["the cat sat on the mat", "a dog ran in the park", "birds fly over blue water"]
    assert utils.distinct_2(same) == pytest.approx(5 / 15)
    assert utils.distinct_2(different) == 1.0
    assert utils.self_bleu(same) == pytest.approx(1.0)
    assert utils.self_bleu(different) < 0.2
