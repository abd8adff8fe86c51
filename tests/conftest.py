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
