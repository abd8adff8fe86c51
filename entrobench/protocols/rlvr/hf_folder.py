"""The policy as a plain Hugging Face folder (weights + a tokenizer), which lm-eval's HFLM loads.

A pretrained policy keeps its own tokenizer. The character task speaks its own one-character-per-token vocabulary (task.VOCAB), so the tokenizer is a
WordLevel model over those characters with ids equal to their VOCAB index. It adds one special
token, EOS, after them: lm-eval needs an end-of-text token (it is always a stop sequence and the
pad id), but the policy's embedding has only len(VOCAB) rows, so EOS is never generated and never
fed to it. Prompts are fixed-width, so no request is ever padded.
"""
from __future__ import annotations

from pathlib import Path

import torch

from entrobench.protocols.rlvr.task import TOKEN, VOCAB

EOS = "<eos>"


def tokenizer():
    """A fast tokenizer whose ids match task.TOKEN exactly, EOS = len(VOCAB), no added BOS/EOS."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {**TOKEN, EOS: len(VOCAB)}
    # a character outside VOCAB becomes EOS, an id the policy's embedding rejects: an error, not another digit
    backend = Tokenizer(models.WordLevel(vocab, unk_token=EOS))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")  # one token per character
    backend.decoder = decoders.Fuse()  # "0" "4" "8" -> "048", no spaces between tokens
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=EOS, pad_token=EOS)


def save_policy(model: torch.nn.Module, tokenizer, folder: Path) -> Path:
    """Write `model` and its task's tokenizer (`task.hf_tokenizer()`) to `folder` (created) in Hugging Face format."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
