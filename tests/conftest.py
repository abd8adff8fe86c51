"""Shared fixtures: the repository root, and a scratch configs folder holding one card."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

MINIMAL_CARD = {
    "version": 1,
    "title": "A test card",
    "arxiv": "0000.00000",
    "defaults": ["_defaults/tta_corruption"],
    "methods": [{"name": "source"}, {"name": "tent"}, {"name": "eta", "method": "tta/eata", "params": {"fisher_alpha": 0.0}}],
    "settings": [{"name": "reset_bs64", "batch_size": 64}],
    "claims": [{"text": "tent.error_pct < source.error_pct"}],
}


@pytest.fixture(autouse=True)
def no_slurm_stall(request, monkeypatch):
    """Snakemake calls in tests not marked `slurm` get scripts/no-slurm first on PATH: once the
    SLURM tests have installed slurm-wlm and stopped it, the SLURM plugin's `scontrol` at import
    would stall every snakemake call ~9 s (scripts/snakemake.sh does the same for local runs)."""
    if request.node.get_closest_marker("slurm") is None:
        monkeypatch.setenv("PATH", f"{REPO / 'scripts' / 'no-slurm'}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.fixture(autouse=True)
def one_thread():
    """Test tensors and models are tiny: extra threads only contend on a shared 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def minimal_card() -> dict:
    return dict(MINIMAL_CARD)


@pytest.fixture
def configs(tmp_path) -> Path:
    """A configs/ folder with the real shared defaults and nothing else."""
    out = tmp_path / "configs"
    shutil.copytree(REPO / "configs" / "_defaults", out / "_defaults")
    (out / "tta").mkdir()
    return out


@pytest.fixture
def write_card(configs):
    """write_card(changes) -> path of a card = MINIMAL_CARD updated with `changes`."""

    def write(changes: dict | None = None, name: str = "test_card", text: str | None = None) -> Path:
        path = configs / "tta" / f"{name}.yaml"
        path.write_text(text if text is not None else yaml.safe_dump({**MINIMAL_CARD, **(changes or {})}, sort_keys=False))
        return path

    return write


# 8 methods x 2 seeds = 16 cells on the tiny protocol, for the parallel runs (local and SLURM).
# No wall-time column (adapt_s), so two runs of it give identical tables.
PARALLEL_CARD = {
    "version": 1, "title": "Sixteen parallel cells", "arxiv": "0000.00000", "defaults": ["_defaults/tta_corruption"],
    "methods": [
        {"name": "source"}, {"name": "bn_adapt"}, {"name": "tent"},
        {"name": "tent_sgd", "method": "tta/tent", "params": {"optimizer": "sgd", "lr": 0.005}},
        {"name": "tent_lr3", "method": "tta/tent", "params": {"lr": 0.003}},
        {"name": "eta", "method": "tta/eata", "params": {"fisher_alpha": 0.0}}, {"name": "eata"}, {"name": "deyo"},
    ],
    "settings": [{"name": "reset_bs64", "batch_size": 64}],
    "table": {"metric": "error_pct", "extra_metrics": ["backward_per_1k", "entropy_mean"]},
    "scales": {"tiny": {"seeds": [0, 1]}},
}


@pytest.fixture
def parallel_card(tmp_path) -> tuple[Path, str]:
    """(work folder, card id): a scratch work folder whose configs/ holds PARALLEL_CARD only."""
    configs = tmp_path / "configs"
    shutil.copytree(REPO / "configs" / "_defaults", configs / "_defaults")
    (configs / "tta").mkdir()
    (configs / "tta" / "parallel16.yaml").write_text(yaml.safe_dump(PARALLEL_CARD, sort_keys=False))
    return tmp_path, "parallel16"


@pytest.fixture
def mlflow_server(tmp_path):
    """A real `mlflow server` on 127.0.0.1 with a SQLite database backend; yields its URI and
    stops it (its process group, by PID) afterwards."""
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = tmp_path / "mlflow-server"
    store.mkdir()
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
           "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}", "--artifacts-destination", str(store / "artifacts")]
    log = open(store / "server.log", "w")
    # no background job runner (seven worker processes the tests do not use)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    uri = f"http://127.0.0.1:{port}"
    try:
        for _ in range(720):  # 180 s: a loaded 2-core machine starts it slowly
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=1)
                break
            except OSError:
                assert proc.poll() is None, (store / "server.log").read_text()[-3000:]
                time.sleep(0.25)
        else:
            raise AssertionError(f"mlflow server did not answer in 180 s: {(store / 'server.log').read_text()[-3000:]}")
        yield uri
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


# A tiny chat model built from a config (no download): the decoding family's lm-eval runs and the
# RLVR chat task run on it in seconds, through the same code paths as SmolLM2.
CHAT = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"


def _write_tiny_chat_lm(folder: Path) -> None:
    """A 2-layer Llama with a byte-level BPE tokenizer and a ChatML template, as SmolLM2's."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = ["The capital of France is Paris.", "12 + 35 = 47. The answer is 47.", "Write a short story about a cat."] * 20
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=["<|im_start|>", "<|im_end|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|im_end|>", bos_token="<|im_start|>")
    tokenizer.chat_template = CHAT
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=512, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


@pytest.fixture(scope="session")
def tiny_chat_lm(tmp_path_factory) -> Path:
    """A folder with the tiny chat model and its tokenizer (built once per test session)."""
    folder = tmp_path_factory.mktemp("tiny_chat_lm") / "tiny_lm"
    _write_tiny_chat_lm(folder)
    return folder


@pytest.fixture(scope="session")
def run_cell_with_builds():
    """run_cell_with_builds(card_path, scale, cell_key, results, out, data_root=None, configs=None)
    -> run-cell's exit code, after making the builds the cell reads (as the DAG would)."""
    return _run_cell_with_builds


def _run_cell_with_builds(card_path: Path, scale: str, cell_key: str, results: Path, out: Path, data_root: Path | None = None, configs: Path | None = None) -> int:
    """What the DAG does for one cell, through the CLI: make each build the cell reads (inputs
    first), then run the cell."""
    from entrobench import cli
    from entrobench.card import load_card
    from entrobench.cells import Cell, cell_builds

    card = load_card(card_path, configs)
    scaled = card.scale(scale)
    common = ["--card", str(card_path), "--scale", scale, "--results", str(results)] + (["--configs", str(configs)] if configs else [])
    common += ["--data-root", str(data_root)] if data_root else []

    def make(build) -> None:
        for dep in build.inputs.values():
            make(dep)
        if not build.folder(results).is_dir():
            assert cli.main(["build", *common, "--out", str(build.folder(results))]) == 0

    for build in cell_builds(scaled, Cell.from_key(card.id, scale, cell_key)).values():
        make(build)
    return cli.main(["run-cell", *common, "--cell", cell_key, "--out", str(out)])
