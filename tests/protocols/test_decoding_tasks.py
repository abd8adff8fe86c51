"""The local lm-eval tasks: items fixed by the protocol, drawn as each YAML says, GSM8K skipped
without a data root; scoring of numbers and names; distinct-n and self-BLEU on small sets."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from entrobench.family import BuildRun
from entrobench.progress import Progress
from entrobench.protocols.decoding.family import TASKS_DIR, Protocol
from entrobench.protocols.decoding.task_data import build_config, build_tasks, check_tasks, find_tasks, include_paths

_spec = importlib.util.spec_from_file_location("decoding_task_utils", TASKS_DIR / "utils.py")
utils = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(utils)


def build(protocol: Protocol, data_root: Path | None, out: Path, dirs: list[Path] = (TASKS_DIR,)) -> dict:
    """The tasks build of a protocol, as the DAG makes it."""
    out.mkdir(parents=True)
    config = build_config(protocol, find_tasks(protocol.tasks, list(dirs)))
    return build_tasks(BuildRun(config=config, inputs={}, out=out, data_root=data_root, progress=Progress("test", every_s=1e9)))


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _items(out: Path, task: str) -> list[dict]:
    return _read(next(out.glob(f"*/{task}.test.jsonl")))


def _yaml(out: Path, task: str) -> dict:
    """A built task's YAML as data (its data paths still refer to the build's folder symbolically)."""
    return yaml.safe_load(next(out.glob(f"*/{task}.yaml")).read_text().replace("!function", ""))


def test_items_are_fixed_by_the_protocol_and_drawn_without_replacement(tmp_path):
    protocol = Protocol(n_items={"eb_add2": 300, "eb_capitals": 5, "eb_open_ended": 3, "eb_gsm8k": 2})
    index = build(protocol, None, tmp_path / "a")
    build(protocol, None, tmp_path / "b")
    first, second = _items(tmp_path / "a", "eb_add2"), _items(tmp_path / "b", "eb_add2")
    assert first == second and len(first) == 300
    assert len({(r["a"], r["b"]) for r in first}) == 300
    assert all(10 <= r["a"] <= 99 and 10 <= r["b"] <= 99 and r["target"] == r["a"] + r["b"] for r in first)
    assert (34, 51) not in {(r["a"], r["b"]) for r in first}  # the worked example is never an item
    capitals = _items(tmp_path / "a", "eb_capitals")
    assert capitals == _read(TASKS_DIR / "capitals.jsonl")[:5]  # select: first
    assert index["runnable"] == ["eb_capitals", "eb_add2", "eb_open_ended"]
    assert "gsm8k" in index["skipped"]["eb_gsm8k"]


def test_add2_items_are_the_pairs_the_generator_drew(tmp_path):
    """add2.jsonl holds the pairs in the order the earlier generator listed them, so the same
    seed draws the same items (and the records of the decoding cards stay as they were)."""
    import numpy as np

    build(Protocol(tasks=["eb_add2"], accuracy_tasks=["eb_add2"], n_items={"eb_add2": 20}), None, tmp_path / "out")
    pairs = [(a, b) for a in range(10, 100) for b in range(10, 100) if (a, b) != (34, 51)]
    picks = np.random.default_rng(0).choice(len(pairs), size=20, replace=False)
    assert [(r["a"], r["b"]) for r in _items(tmp_path / "out", "eb_add2")] == [pairs[i] for i in picks]


def test_yamls_get_absolute_data_paths_where_the_build_is_read(tmp_path):
    build(Protocol(n_items={"eb_add2": 3}), None, tmp_path / "made")
    (tmp_path / "made").rename(tmp_path / "moved")  # builds are made aside and renamed into place
    paths = include_paths(tmp_path / "moved", tmp_path / "scratch")
    text = next(Path(p) / "eb_add2.yaml" for p in paths if (Path(p) / "eb_add2.yaml").is_file()).read_text()
    files = yaml.safe_load(text.replace("!function", ""))["dataset_kwargs"]["data_files"]
    assert set(files) == {"test", "train"}
    assert all(Path(p).is_absolute() and Path(p).is_file() and "moved" in p for p in files.values())
    assert all((Path(p) / "utils.py").is_file() for p in paths)  # the scoring the YAMLs call, beside them


def test_max_gen_toks_caps_one_task_and_leaves_the_others(tmp_path):
    build(Protocol(tasks=["eb_capitals", "eb_add2"], n_items={"eb_add2": 3}, max_gen_toks={"eb_add2": 7}), None, tmp_path / "out")
    assert _yaml(tmp_path / "out", "eb_add2")["generation_kwargs"]["max_gen_toks"] == 7
    capitals = yaml.safe_load((TASKS_DIR / "eb_capitals.yaml").read_text().replace("!function", ""))["generation_kwargs"]["max_gen_toks"]
    assert _yaml(tmp_path / "out", "eb_capitals")["generation_kwargs"]["max_gen_toks"] == capitals
    with pytest.raises(ValueError, match="max_gen_toks: 'gsm8k' is not in tasks"):
        Protocol(max_gen_toks={"gsm8k": 7})


def test_gsm8k_subset_reads_the_data_root(tmp_path):
    root = tmp_path / "root"
    (root / "gsm8k").mkdir(parents=True)
    (root / "gsm8k" / "test.jsonl").write_text('{"question": "q1", "answer": "x\\n#### 1,200"}\n{"question": "q2", "answer": "#### 7"}\n')
    index = build(Protocol(tasks=["eb_gsm8k"], accuracy_tasks=[], n_items={"eb_gsm8k": 1}), root, tmp_path / "out")
    assert index["runnable"] == ["eb_gsm8k"] and not index["skipped"]
    rows = _items(tmp_path / "out", "eb_gsm8k")
    assert len(rows) == 1 and rows[0]["question"] in ("q1", "q2")


def test_an_unknown_task_is_one_line_with_the_nearest_name(tmp_path):
    with pytest.raises(ValueError, match=r"unknown task 'eb_capitalz' \(did you mean eb_capitals\?"):
        check_tasks(["eb_capitalz"], [tmp_path, TASKS_DIR])
    check_tasks(["eb_capitals", "gsm8k"], [tmp_path, TASKS_DIR])  # ours and lm-eval's


def test_gsm8k_docs_take_the_number_after_the_marks():
    from datasets import Dataset

    docs = utils.gsm8k_docs(Dataset.from_list([{"question": "q", "answer": "so 3 + 4\n#### 1,207"}]))
    assert docs[0]["target"] == "1207"


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


def test_hub_metrics_read_one_filter_each_and_feed_acc_mean():
    """lm-eval's own tasks give one column per benchmark and filter (not a merged acc_hub)."""
    from entrobench.protocols.decoding.run import task_metrics

    protocol = Protocol(tasks=["gsm8k_cot", "gpqa_main_generative_n_shot", "eb_open_ended"], accuracy_tasks=["acc_gsm8k_strict", "acc_gpqa"],
                        hub_metrics={"acc_gsm8k_strict": "gsm8k_cot:exact_match,strict-match", "acc_gsm8k_flexible": "gsm8k_cot:exact_match,flexible-extract",
                                     "acc_gpqa": "gpqa_main_generative_n_shot:exact_match,flexible-extract"})
    results = {"gsm8k_cot": {"exact_match,strict-match": 0.25, "exact_match,flexible-extract": 0.5, "exact_match_stderr,strict-match": 0.1},
               "gpqa_main_generative_n_shot": {"exact_match,strict-match": 0.0, "exact_match,flexible-extract": 0.75},
               "eb_open_ended": {"distinct_2,none": 0.9}}
    metrics = task_metrics(results, protocol, local={"eb_open_ended"})
    assert metrics == {"acc_gsm8k_strict": 0.25, "acc_gsm8k_flexible": 0.5, "acc_gpqa": 0.75, "distinct_2": 0.9, "acc_mean": 0.5}
    with pytest.raises(ValueError, match="hub_metrics.acc_x: expected 'task:metric,filter' with a task of `tasks`"):
        Protocol(tasks=["gsm8k_cot"], accuracy_tasks=[], hub_metrics={"acc_x": "gsm8k:exact_match,strict-match"})


def test_hub_task_names_are_kept_per_install_and_reread_for_a_name_they_lack(tmp_path, monkeypatch):
    """The list of lm-eval's tasks is read from its YAMLs once and then from the user's cache; a
    name missing from the kept list (a task added since) makes it read the YAMLs again."""
    from entrobench.lm.harness import hub_task_names

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    hub_task_names.cache_clear()
    assert "gsm8k" in hub_task_names()
    kept = next((tmp_path / "entrobench").glob("lm-eval-tasks-*.json"))
    kept.write_text(json.dumps(["eb_only_in_the_kept_list"]))  # as if lm-eval had no gsm8k when it was written
    hub_task_names.cache_clear()
    check_tasks(["eb_only_in_the_kept_list"], [tmp_path / "no-local-tasks"])  # read from the kept list
    check_tasks(["gsm8k"], [tmp_path / "no-local-tasks"])  # not in it: the YAMLs are read again
    assert "gsm8k" in json.loads(kept.read_text())
    hub_task_names.cache_clear()
