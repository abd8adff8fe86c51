"""Datasets and lm-eval tasks declared as data reach a table with no code: an image dataset
written as .npz and as .h5 in a scratch folder, declared in configs/_datasets/, runs a TTA
card's tiny table with claims; a task YAML and its JSONL items in configs/_tasks/ give a
decoding card its acc_<task> column; a card naming a task that exists nowhere fails `check`
with one line."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores", "2"]


def snakemake(work: Path, configs: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([*SNAKEMAKE, "--directory", str(work), "--config", f"configs={configs}", *args], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def digits16() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits at 16x16 grayscale, uint8 (N, 16, 16, 1): a small real image set."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.kron(digits.images, np.ones((2, 2))) / 16.0 * 255  # 8x8 -> 16x16, nearest
    return images.round().astype(np.uint8)[..., None], digits.target.astype(np.int64)


TTA_CARD = {
    "version": 1, "title": "Tent on declared digits", "arxiv": "0000.00000", "defaults": ["_defaults/tta_corruption"],
    "datasets": ["digits16_npz", "digits16_h5"],
    "methods": [{"name": "source"}, {"name": "bn_adapt", "label": "BN-adapt"}, {"name": "tent"}],
    "settings": [{"name": "reset_bs64", "batch_size": 64}],
    "scales": {"full": None, "smoke": None, "tiny": {"datasets": ["digits16_npz", "digits16_h5"], "seeds": [0]}},
    "claims": [{"text": "bn_adapt.error_pct < source.error_pct", "scales": ["tiny"]}],
}


@pytest.mark.slow
def test_an_image_dataset_declared_in_yaml_runs_a_tta_table(tmp_path):
    images, labels = digits16()
    data = tmp_path / "mydata"
    data.mkdir()
    np.savez(data / "digits16.npz", x=images, y=labels)
    import h5py

    with h5py.File(data / "digits16.h5", "w") as f:
        f["images"], f["labels"] = images, labels
    configs = tmp_path / "configs"
    shutil.copytree(REPO / "configs" / "_defaults", configs / "_defaults")
    (configs / "_datasets").mkdir()
    common = {"family": "tta", "root": str(data), "n_classes": 10, "channels": 1, "image_size": 16, "layout": "nhwc", "pixel_max": 255}
    (configs / "_datasets" / "digits16_npz.yaml").write_text(yaml.safe_dump({**common, "format": "npz", "path": "digits16.npz", "images": "x", "labels": "y"}))
    (configs / "_datasets" / "digits16_h5.yaml").write_text(yaml.safe_dump({**common, "format": "h5", "path": "digits16.h5", "images": "images", "labels": "labels"}))
    (configs / "tta").mkdir()
    (configs / "tta" / "declared.yaml").write_text(yaml.safe_dump(TTA_CARD))

    snakemake(tmp_path, configs, "--", "results/declared/tiny/table.md")
    table = (tmp_path / "results" / "declared" / "tiny" / "table.md").read_text()
    assert "## digits16_npz · reset_bs64" in table and "## digits16_h5 · reset_bs64" in table
    assert table.count("**holds**") + table.count("**fails**") == 2  # the claim, judged on each dataset
    assert "no `full` scale" in table  # the dropped paper scale is not compared with
    npz = sorted((tmp_path / "results" / "cells" / "tiny" / "digits16_npz").rglob("seed0.json"))
    h5 = sorted((tmp_path / "results" / "cells" / "tiny" / "digits16_h5").rglob("seed0.json"))
    assert len(npz) == len(h5) == 3
    for a, b in zip(npz, h5):  # the same images through two readers: the same numbers
        ra, rb = json.loads(a.read_text()), json.loads(b.read_text())
        assert ra["status"] == rb["status"] == "ok", (ra.get("reason"), rb.get("reason"))
        assert ra["data_fingerprint"] == rb["data_fingerprint"]
        assert ra["metrics"]["error_pct"] == rb["metrics"]["error_pct"]


ANTONYMS = [{"word": w, "answers": [a]} for w, a in [("hot", "cold"), ("up", "down"), ("big", "small"), ("fast", "slow"), ("old", "new"), ("left", "right")]]
TASK = {
    "task": "eb_antonyms", "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": "antonyms.jsonl"}}, "test_split": "test",
    "output_type": "generate_until", "doc_to_text": "The opposite of {{word}} is", "doc_to_target": "{{answers[0]}}",
    "process_results": "!function utils.score_names", "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
    "generation_kwargs": {"until": ["\n"], "max_gen_toks": 4}, "metadata": {"version": 1.0, "description": "antonyms, zero-shot"},
}


def decoding_configs(tmp_path: Path, tasks: list[str]) -> Path:
    card = yaml.safe_load((REPO / "configs" / "decoding" / "top_h_potraghloo2025.yaml").read_text())
    card["scales"]["tiny"]["protocol"].update(model="tiny_lm", tasks=tasks, accuracy_tasks=[t for t in tasks if t != "eb_open_ended"],
                                              n_items={t: 4 for t in tasks})
    card["table"]["extra_metrics"] = ["acc_antonyms", "distinct_2"]
    card["claims"] = [{"text": "top_h.acc_antonyms >= 0"}]
    configs = tmp_path / "configs"
    (configs / "decoding").mkdir(parents=True)
    (configs / "decoding" / "mine.yaml").write_text(yaml.safe_dump(card))
    return configs


@pytest.mark.slow
def test_a_task_declared_as_yaml_and_jsonl_gets_its_accuracy_column(tmp_path, tiny_chat_lm):
    configs = decoding_configs(tmp_path, ["eb_antonyms", "eb_open_ended"])
    tasks = configs / "_tasks"
    tasks.mkdir()
    (tasks / "eb_antonyms.yaml").write_text(yaml.safe_dump(TASK).replace("'!function utils.score_names'", "!function utils.score_names"))
    (tasks / "antonyms.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ANTONYMS))
    shutil.copy(REPO / "entrobench" / "protocols" / "decoding" / "tasks" / "utils.py", tasks / "utils.py")  # its scoring, beside it
    shutil.copytree(tiny_chat_lm, tmp_path / "data" / "tiny_lm")
    snakemake(tmp_path, configs, f"data_root={tmp_path / 'data'}", "--", "results/mine/tiny/table.md")
    table = (tmp_path / "results" / "mine" / "tiny" / "table.md").read_text()
    assert "acc_antonyms (fraction)" in table and "antonyms, zero-shot" in table
    record = json.loads(next((tmp_path / "results" / "cells" / "tiny").rglob("decoding.top_h-*/seed0.json")).read_text())
    assert 0 <= record["metrics"]["acc_antonyms"] <= 1
    assert sum(s["task"] == "eb_antonyms" for s in record["samples"]) == 4

    # the task's files are inputs of exactly the cells that use them: edit the items, they rerun
    (tasks / "antonyms.jsonl").write_text("".join(json.dumps(r) + "\n" for r in reversed(ANTONYMS)))
    dry = snakemake(tmp_path, configs, f"data_root={tmp_path / 'data'}", "-n", "--", "results/mine/tiny/table.md")
    assert "build" in dry.stdout and "run_cell" in dry.stdout


def test_a_card_naming_a_missing_task_fails_check_with_one_line(tmp_path):
    configs = decoding_configs(tmp_path, ["eb_antonym", "eb_open_ended"])
    proc = subprocess.run([sys.executable, "-m", "entrobench", "check", "--configs", str(configs)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "mine.yaml: scales.tiny: protocol.tasks: unknown task 'eb_antonym'" in lines[0]
    assert "_tasks" in lines[0]  # where a task of one's own goes
