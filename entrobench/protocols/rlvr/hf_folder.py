"""The policy as a plain Hugging Face folder (weights + a tokenizer), which lm-eval's HFLM loads.

A pretrained policy keeps its own tokenizer; the character task brings its own (task.char_tokenizer).
"""
from __future__ import annotations

from pathlib import Path

import torch


def save_policy(model: torch.nn.Module, tokenizer, folder: Path) -> Path:
    """Write `model` and its task's tokenizer (`task.hf_tokenizer()`) to `folder` (created) in Hugging Face format."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
