"""Top-H with the bound on the renormalized kept set: a named variant of `decoding/top_h`.

The constraint as the authors' README and their transformers pull request word it: keep tokens
in order of decreasing probability, and stop before the first one that would make

    H(q_S) <= alpha * H(p),   q_S = p restricted to the kept set S and renormalized,

false, with H(p) over the whole vocabulary and no candidate cap. This was `decoding/top_h` until
that module followed the authors' processor (top-100 candidates, the unnormalized partial sum
-sum_S p log p against alpha times the candidates' share of H(p)); it stays so a card can show
what the difference in rules does. It keeps more tokens than the authors' rule where the
distribution is flat (high temperature): renormalizing makes a low-mass prefix look less uncertain.

The entropy of a sorted prefix never decreases as it grows (the paper's Theorem 3: the token added
is the least likely so far), so this keeps the longest prefix within the bound, at least the top
token (its one-token set has entropy 0); alpha = 0 is greedy, alpha = 1 keeps every token of
nonzero probability (on rows with H(p) under ~1e-9 nats, rounding in log S_k may drop the last
ones). p is the distribution after temperature. All prefixes at once:
H(q_k) = A_k / S_k + log S_k with S_k = sum_{i<=k} p_(i) and A_k = -sum_{i<=k} p_(i) log p_(i).

Numerics: probabilities and sums in float64, and a relative slack of REL_TOL on the bound, so that
rounding cannot stop a prefix that meets the bound exactly (alpha = 1). A slack in nats would not
scale: 1e-6 nats exceeded the whole bound on rows with H(p) below ~2.5e-6 and kept the whole
vocabulary there (issue 14: 17 of 144 SmolLM2 rows at T 0.3).
"""
from __future__ import annotations

import torch

from methods.decoding.base import LogitsProcessor, NEG_INF
from methods.decoding.top_h import TopH
from methods.registry import register

# Tokens examined first: the kept set is almost always far smaller, and a top-k of this many costs
# a fraction of a full sort over a 49k vocabulary. A kept set that reaches the end of the head falls
# back to the full sort, so the result is exact.
HEAD = 256
REL_TOL = 1e-9  # relative: float64 sums of <= 10^6 terms are good to ~1e-10


def kept_count(sorted_probs: torch.Tensor, alpha: float, full_entropy: torch.Tensor | None = None) -> torch.Tensor:
    """(..., K) probabilities sorted descending -> how many leading tokens the rule keeps, (...).
    The bound alpha * H(p) needs the whole distribution: pass H(p), shape (..., 1), when
    `sorted_probs` is only its head."""
    plogp = torch.xlogy(sorted_probs, sorted_probs)  # 0 for p = 0 (-inf logits)
    bound = alpha * (-plogp.sum(-1, keepdim=True) if full_entropy is None else full_entropy)
    mass = sorted_probs.cumsum(-1)
    prefix_entropy = -plogp.cumsum(-1) / mass + mass.log()
    within = (prefix_entropy <= bound * (1 + REL_TOL)) & (sorted_probs > 0)
    return within.cumprod(-1).sum(-1).clamp_min(1)  # stop at the first violation


class TopHRenormProcessor(LogitsProcessor):
    def __init__(self, alpha: float):
        self.alpha = alpha

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        probs = scores.double().softmax(-1)
        full_entropy = -torch.xlogy(probs, probs).sum(-1, keepdim=True)
        head_probs, order = probs.topk(min(HEAD, probs.shape[-1]), dim=-1)
        keep = kept_count(head_probs, self.alpha, full_entropy)
        if order.shape[-1] < probs.shape[-1] and bool((keep >= order.shape[-1]).any()):
            head_probs, order = probs.sort(-1, descending=True)
            keep = kept_count(head_probs, self.alpha, full_entropy)
        kept_sorted = torch.arange(order.shape[-1], device=scores.device) < keep.unsqueeze(-1)
        drop = torch.ones_like(scores, dtype=torch.bool).scatter_(-1, order, ~kept_sorted)
        return scores.masked_fill(drop, NEG_INF)


@register("decoding/top_h_renorm")
class TopHRenorm(TopH):
    """Top-H's parameter (alpha, default 0.4), this rule's processor."""

    def truncation(self):
        return [TopHRenormProcessor(self.params.alpha)]
