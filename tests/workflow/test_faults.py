"""Faults, injected: snakemake killed (-9, with its jobs) at random moments and rerun with the
same command ends with the records of an uninterrupted run; strings from a card or a path never
run as shell code; 50 mutated cards each get one clear line, none a traceback, none accepted."""
from __future__ import annotations

import copy
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from entrobench.card import CardError, load_card

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "tests" / "plugin"
TIMING = ("wall_s", "peak_mem_mb", "finished_at", "cost", "argv", "host", "git_sha")


def run_same_command(work: Path, configs: Path, kill_after_s: float | None = None) -> int:
    """The README's way to run, through scripts/snakemake.sh (stale locks handled); with
    `kill_after_s`, SIGKILL to the whole process group (snakemake and its jobs) after that long."""
    cmd = ["bash", str(REPO / "scripts" / "snakemake.sh"), "--snakefile", str(REPO / "Snakefile"), "--directory", str(work), "--cores", "2",
           "--rerun-incomplete", "--config", f"configs={configs}", f"plugins={PLUGIN}", "--", "results/toy_means/tiny/table.md"]
    with open(work / "snakemake.out", "a") as out:  # kept so that a failed rerun can say why
        proc = subprocess.Popen(cmd, cwd=work, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "VENV": str(Path(sys.executable).parents[1])})
    if kill_after_s is None:
        return proc.wait(timeout=900)
    try:
        return proc.wait(timeout=kill_after_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()


def records(work: Path) -> dict[str, dict]:
    out = {}
    for path in sorted((work / "results" / "cells").rglob("seed*.json")):
        rec = json.loads(path.read_text())
        out[str(path.relative_to(work))] = {k: v for k, v in rec.items() if k not in TIMING}
    return out


@pytest.mark.slow
def test_kill_minus_nine_at_random_moments_then_the_same_command_finishes_the_work(tmp_path):
    straight = tmp_path / "straight"
    straight.mkdir()
    assert run_same_command(straight, PLUGIN / "configs") == 0
    reference = records(straight)
    assert len(reference) == 24
    rng = random.Random()
    survived = 0
    for trial in range(3):
        work = tmp_path / f"killed{trial}"
        work.mkdir()
        start = time.monotonic()
        code = run_same_command(work, PLUGIN / "configs", kill_after_s=rng.uniform(3, 25))
        killed_at = time.monotonic() - start
        assert run_same_command(work, PLUGIN / "configs") == 0, (
            f"trial {trial}: killed after {killed_at:.1f}s (code {code}), rerun failed:\n{(work / 'snakemake.out').read_text()[-3000:]}")
        assert records(work) == reference, f"trial {trial}: killed after {killed_at:.1f}s"
        assert (work / "results" / "toy_means" / "tiny" / "table.md").is_file()
        survived += 1
    assert survived == 3


@pytest.mark.slow
def test_shell_syntax_in_paths_never_runs(tmp_path):
    """Card paths reach the jobs' command lines quoted: a configs folder named with $(...),
    backticks and ; runs as a plain name."""
    configs = tmp_path / "cfg $(touch PWNED1) `touch PWNED2`; touch PWNED3"
    shutil.copytree(PLUGIN / "configs", configs)
    work = tmp_path / "work"
    work.mkdir()
    assert run_same_command(work, configs) == 0
    assert not list(tmp_path.rglob("PWNED*")) and not list(Path.cwd().glob("PWNED*"))
    assert (work / "results" / "toy_means" / "tiny" / "table.md").is_file()


BASE = {
    "version": 1, "title": "Fuzzed", "arxiv": "0000.00000", "defaults": ["_defaults/tta_corruption"],
    "methods": [{"name": "source"}, {"name": "tent"}, {"name": "eta", "method": "tta/eata", "params": {"fisher_alpha": 0.0}}],
    "settings": [{"name": "reset_bs64", "batch_size": 64}],
    "claims": [{"text": "tent.error_pct < source.error_pct"}],
}


def _set(path: list, value):
    def mutate(card: dict) -> dict:
        card = copy.deepcopy(card)
        node = card
        for key in path[:-1]:
            node = node.setdefault(key, {}) if isinstance(key, str) else node[key]
        node[path[-1]] = value
        return card
    return mutate


def _drop(key: str):
    return lambda card: {k: v for k, v in copy.deepcopy(card).items() if k != key}


PAYLOADS = ["$(touch PWNED)", "`touch PWNED`", "x; touch PWNED", "a|b", "..", "../x", "a/b", " ", "x\ny", "-rf", "a>b", "a&b"]
MUTATIONS = [
    *[(f"setting name {p!r}", _set(["settings", 0, "name"], p)) for p in PAYLOADS],
    *[(f"row name {p!r}", _set(["methods", 1, "name"], p)) for p in PAYLOADS[:6]],
    ("seed -1", _set(["seeds"], [-1])), ("seed 10^30", _set(["seeds"], [10**30])), ("seed 1.5", _set(["seeds"], [1.5])), ("seeds twice", _set(["seeds"], [1, 1])),
    ("batch 0", _set(["settings", 0, "batch_size"], 0)), ("batch -4", _set(["settings", 0, "batch_size"], -4)), ("batch 'big'", _set(["settings", 0, "batch_size"], "big")),
    ("lr inf", _set(["methods", 1, "params"], {"lr": float("inf")})), ("lr nan", _set(["methods", 1, "params"], {"lr": float("nan")})),
    ("lr string", _set(["methods", 1, "params"], {"lr": "fast"})), ("unknown param", _set(["methods", 1, "params"], {"lrr": 0.1})),
    ("n_test -5", _set(["scales", "smoke", "protocol", "n_test"], -5)), ("epochs 0", _set(["scales", "smoke", "protocol", "train_epochs"], 0)),
    ("severity 9", _set(["scales", "smoke", "protocol", "severity"], 9)), ("unknown corruption", _set(["scales", "smoke", "protocol", "corruptions"], ["fogg"])),
    ("unknown scale", _set(["scales", "huge"], {"seeds": [0]})), ("unknown resource", _set(["scales", "smoke", "resources", "gpus"], 1)),
    ("slurm_extra payload", _set(["scales", "full", "resources", "slurm_extra"], "--signal=TERM@120; touch PWNED")),
    ("absolute weights", _set(["scales", "full", "protocol", "source_weights"], "/etc/passwd")),
    ("defaults outside", _set(["defaults"], ["../../etc/x"])), ("defaults absolute", _set(["defaults"], ["/etc/hosts"])),
    ("duplicate settings", _set(["settings"], [{"name": "a"}, {"name": "a"}])), ("duplicate rows", _set(["methods"], [{"name": "tent"}, {"name": "tent"}])),
    ("unknown method", _set(["methods", 1, "name"], "tentt")), ("unknown dataset", _set(["datasets"], ["mnist"])),
    ("claim with code", _set(["claims", 0, "text"], "__import__('os').system('touch PWNED') > 0")),
    ("claim unknown metric", _set(["claims", 0, "text"], "tent.err < source.err")), ("unknown top key", _set(["titel"], "x")),
    ("no title", _drop("title")), ("methods not a list", _set(["methods"], "tent")), ("table metric unknown", _set(["table", "metric"], "acc")),
]
TEXT_MUTATIONS = [("unclosed list", "title: x\nseeds: [0, 1\n"), ("duplicate key", "title: x\ntitle: y\n"), ("tab indentation", "title: x\n\tseeds: [0]\n"),
                  ("not a mapping", "- just\n- a list\n"), ("binary junk", "\x00\x01\x02")]


def test_fifty_mutated_cards_each_get_one_clear_line(configs, write_card):
    assert len(MUTATIONS) + len(TEXT_MUTATIONS) >= 50
    assert load_card(write_card(BASE))  # the base is valid: every failure below is the mutation's
    outcomes = []
    for label, mutate in MUTATIONS:
        path = write_card(text=yaml.safe_dump(mutate(BASE), sort_keys=False, allow_unicode=True))
        outcomes.append((label, path))
    for label, text in TEXT_MUTATIONS:
        outcomes.append((label, write_card(text=text, name=f"text_{TEXT_MUTATIONS.index((label, text))}")))
    accepted, unclear = [], []
    for label, path in outcomes:
        try:
            load_card(path, configs)
            accepted.append(label)
        except CardError as err:
            message = str(err)
            if "\n" in message or not message.startswith(str(path).rsplit("/", 1)[0]) or len(message) > 400:
                unclear.append((label, message))
        # any other exception would be a traceback for the user: it fails the test here
    assert not accepted, f"accepted wrongly: {accepted}"
    assert not unclear, unclear
    assert not list(Path.cwd().glob("PWNED*")) and not list(configs.rglob("PWNED*"))
