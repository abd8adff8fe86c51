"""Top-H decoding (Baghaei Potraghloo, Azizi, Kundu, Pedram. NeurIPS 2025, arXiv 2509.02510).
Reference code: github.com/ErfanBaghaei/Top-H-Decoding.

The paper casts truncation as entropy-constrained minimum divergence: find the distribution q,
p restricted to a token set S and renormalized, closest to p in KL(q || p) = -log p(S) under
H(q) <= alpha * H(p); that is entropy-constrained mass maximization (ECMM):

    maximize p(S) = sum_{i in S} p_i   subject to   H(q_S) <= alpha * H(p),

which is NP-hard. Top-H solves it greedily: add tokens in order of decreasing probability and stop
before the first one that would push the entropy of the renormalized kept set above the bound
alpha * H(p). The entropy of a sorted prefix never decreases as it grows (the token added is the
least likely so far), so this keeps the longest prefix within the bound, at least the top token
(its one-token set has entropy 0). p is the distribution after temperature, as for top-p and
min-p. The kept set's entropy, computed for all prefixes at once:
H(q_k) = A_k / S_k + log S_k with S_k = sum_{i<=k} p_(i) and A_k = -sum_{i<=k} p_(i) log p_(i).

alpha (the paper's entropy scale, default 0.4 as in the authors' logits processor) is a
fraction of the full distribution's entropy: 0 keeps only the top token, 1 allows the kept set
as much entropy as the whole distribution. Units cancel (nats here; the reference uses bits).
The bound is the authors' README statement of the constraint, H(q) <= alpha * H(p). Their logits
processor differs in two ways, both left out here: it first cuts the vocabulary to the top 100
tokens, and it bounds the unnormalized partial sum -sum_{i in S} p_i log p_i (the kept set's
share of H(p)) rather than the renormalized H(q_S); the paper's text was not readable offline
to settle which one its tables used.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import LogitsProcessor

from methods.decoding.base import NEG_INF, Sampler
from methods.registry import register


# Tokens examined first: the kept set is almost always far smaller (3 on average for SmolLM2 at
# T 1), and a top-k of this many costs a fraction of a full sort over a 49k vocabulary. A kept set
# that reaches the end of the head falls back to the full sort, so the result is exact.
HEAD = 256


def kept_count(sorted_probs: torch.Tensor, alpha: float, full_entropy: torch.Tensor | None = None) -> torch.Tensor:
    """(..., K) probabilities sorted descending -> how many leading tokens Top-H keeps, (...).
    The bound alpha * H(p) needs the whole distribution: pass H(p), shape (..., 1), when
    `sorted_probs` is only its head."""
    plogp = torch.xlogy(sorted_probs, sorted_probs)  # 0 for p = 0 (-inf logits)
    bound = alpha * (-plogp.sum(-1, keepdim=True) if full_entropy is None else full_entropy)
    mass = sorted_probs.cumsum(-1)
    prefix_entropy = -plogp.cumsum(-1) / mass + mass.log()
    # stop at the first violation (rounding can make the exact prefix entropy wobble by ulps)
    within = (prefix_entropy <= bound + 1e-6 * bound.abs().clamp_min(1)).cumprod(-1)
    return within.sum(-1).clamp_min(1)


class TopHProcessor(LogitsProcessor):
    def __init__(self, alpha: float):
        self.alpha = alpha

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        probs = scores.float().softmax(-1)
        full_entropy = -torch.xlogy(probs, probs).sum(-1, keepdim=True)
        head_probs, order = probs.topk(min(HEAD, probs.shape[-1]), dim=-1)
        keep = kept_count(head_probs, self.alpha, full_entropy)
        if order.shape[-1] < probs.shape[-1] and bool((keep >= order.shape[-1]).any()):
            head_probs, order = probs.sort(-1, descending=True)
            keep = kept_count(head_probs, self.alpha, full_entropy)
        kept_sorted = torch.arange(order.shape[-1], device=scores.device) < keep.unsqueeze(-1)
        drop = torch.ones_like(scores, dtype=torch.bool).scatter_(-1, order, ~kept_sorted)
        return scores.masked_fill(drop, NEG_INF)


@register("decoding/top_h")
class TopH(Sampler):
    @dataclass(frozen=True)
    class Params:
        alpha: float = 0.4  # entropy bound as a fraction of H(p), in [0, 1] (paper default 0.4)

        def __post_init__(self):
            if not 0 <= self.alpha <= 1:
                raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")

    def truncation(self):
        return [TopHProcessor(self.params.alpha)]
