"""Greedy decoding: always the most likely token (the argmax; temperature cannot change it).

Implemented as a truncation to the single argmax, so it runs through the same sampling path as
every other method; the draw from a one-token set is deterministic. Ties go to the lowest token
id, as torch.argmax breaks them (transformers' greedy search does the same).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.decoding.base import LogitsProcessor, NEG_INF, Sampler
from methods.registry import register


class KeepArgmax(LogitsProcessor):
    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        keep = torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, scores.argmax(-1, keepdim=True), True)
        return scores.masked_fill(~keep, NEG_INF)


@register("decoding/greedy")
class Greedy(Sampler):
    # the argmax is the same at every temperature and for every seed: one run fills the row
    INVARIANT_TO = ("setting.temperature", "seed")

    @dataclass(frozen=True)
    class Params:
        pass  # greedy has no parameter

    def truncation(self):
        return [KeepArgmax()]
