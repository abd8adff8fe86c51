"""Min-p sampling (Nguyen et al. 2024, arXiv 2407.01082): keep the tokens whose probability is
at least p_base times the top token's probability, renormalize, draw.

The kept set is exactly transformers' MinPLogitsWarper's (tests/methods/decoding check it on
random logits). Probabilities are those after temperature, as in transformers and the paper.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.decoding.base import LogitsProcessor, NEG_INF, Sampler
from methods.registry import register


class MinP(LogitsProcessor):
    def __init__(self, p_base: float):
        self.p_base = p_base

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        probs = scores.softmax(-1)
        threshold = self.p_base * probs.max(-1, keepdim=True).values
        drop = probs < threshold
        drop.scatter_(-1, probs.argmax(-1, keepdim=True), False)  # the most likely token always stays
        return scores.masked_fill(drop, NEG_INF)


@register("decoding/min_p")
class MinPSampler(Sampler):
    @dataclass(frozen=True)
    class Params:
        p_base: float = 0.1  # fraction of the top token's probability a token needs, in [0, 1] (paper: 0.05 or 0.1)

        def __post_init__(self):
            if not 0 <= self.p_base <= 1:
                raise ValueError(f"p_base must be in [0, 1], got {self.p_base}")

    def truncation(self):
        return [MinP(self.params.p_base)]
