"""Top-k sampling (Fan et al. 2018): keep the k most likely tokens, renormalize, draw.

Applied after temperature, as transformers does. Ties at the k-th logit are all kept, as in
transformers' TopKLogitsWarper (it removes tokens strictly below the k-th value).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.decoding.base import LogitsProcessor, NEG_INF, Sampler
from methods.registry import register


class KeepTopK(LogitsProcessor):
    def __init__(self, k: int):
        self.k = k

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        k = min(self.k, scores.shape[-1])
        kth = torch.topk(scores, k, dim=-1).values[..., -1:]
        return scores.masked_fill(scores < kth, NEG_INF)


@register("decoding/top_k")
class TopK(Sampler):
    @dataclass(frozen=True)
    class Params:
        k: int = 50  # tokens kept per step (the Top-H paper's baseline uses k = 50)

        def __post_init__(self):
            if self.k < 1:
                raise ValueError(f"k must be >= 1, got {self.k}")

    def truncation(self):
        return [KeepTopK(self.params.k)]
