"""Top-p (nucleus) sampling (Holtzman et al. 2020, arXiv 1904.09751): keep the smallest set of
most likely tokens whose probability sums to at least p, renormalize, draw.

The kept set is exactly transformers' TopPLogitsWarper's (tests/methods/decoding check it on
random logits): sort ascending, drop the tokens whose cumulative probability is <= 1 - p,
always keep the most likely token.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.decoding.base import LogitsProcessor, NEG_INF, Sampler
from methods.registry import register


class Nucleus(LogitsProcessor):
    def __init__(self, p: float):
        self.p = p

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        sorted_logits, order = torch.sort(scores, descending=False)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        drop_sorted = cumulative <= (1 - self.p)
        drop_sorted[..., -1] = False  # the most likely token always stays
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        return scores.masked_fill(drop, NEG_INF)


@register("decoding/top_p")
class TopP(Sampler):
    @dataclass(frozen=True)
    class Params:
        p: float = 0.9  # probability mass kept, in (0, 1] (the Top-H paper compares 0.9 and 0.95)

        def __post_init__(self):
            if not 0 < self.p <= 1:
                raise ValueError(f"p must be in (0, 1], got {self.p}")

    def truncation(self):
        return [Nucleus(self.params.p)]
