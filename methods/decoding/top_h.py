"""Top-H decoding (Baghaei Potraghloo, Azizi, Kundu, Pedram. NeurIPS 2025, arXiv 2509.02510), as
the authors' logits processor runs it (github.com/ErfanBaghaei/Top-H-Decoding, logit_processor.py,
the one their lm_evaluate.sh and alpaca_generate.py call).

The paper casts truncation as entropy-constrained mass maximization (keep the most probability
mass whose entropy stays within alpha times the model's) and solves it greedily: add tokens in
order of decreasing probability and stop before the first one that breaks the entropy budget.
The authors' processor makes that rule concrete as follows, and so does this module:

- Candidates: only the 100 most likely tokens (their `top_n`); at most 100 are ever kept.
- Budget: with p the full softmax (not renormalized over the candidates) and C the candidates,
      tau = alpha * sum_{i in C} -p_i log p_i,
  the candidates' share of H(p). Their code writes it as (H(p_C / m) - log m) * m with
  m = p(C), which is the same sum.
- Rule: keep the longest prefix S of the candidates, by decreasing p, whose unnormalized partial
  sum -sum_{i in S} p_i log p_i is at most tau, and always the top token. Their loop breaks at the
  first prefix over tau; the partial sums never decrease, so that is the largest prefix within it.
  The comparison is exact (<=, no tolerance): at alpha = 1 the full candidate set meets the
  budget with equality and is kept.
- Temperature comes first: they select on softmax(logits / T) and hand Hugging Face's
  temperature warper the masked logits, so the kept set and the sampled distribution are those
  of temperature-then-truncation, as for top-p and min-p here (base.py).
- Units cancel: their log2 (bits) and our natural log keep the same tokens.

Where their code stops short, and what this module does instead (tests/methods/decoding pin each):
- Batches: theirs asserts batch size 1 (lm-eval ran with --batch_size 1); rows here are independent.
- alpha = 0: theirs rejects it (alpha in (0, 1]); here it keeps only the top token (greedy).
- alpha = 1: their tau and their running sum are the same number computed two ways, so rounding
  decides: on 600 random rows their loop ran past its 100 candidates (IndexError) on 370 and
  stopped early on the rest (99 kept, or as few as 8 on peaked rows). Here the budget is the
  running sum's own last value, so alpha = 1 keeps every candidate.
- A vocabulary under 100 tokens: theirs fails in topk; here every token is a candidate.
- Tokens of probability 0 (-inf logits) among the candidates: theirs computes 0 * log 0 = NaN,
  never stops and fails (IndexError); here they add 0 to the sums and are never kept.
- Ties: tokens of equal probability are taken in torch.topk's order, as in their code.

Against their processor, run locally (not vendored): the same kept set on each of 2,016 SmolLM2
next-token rows at T 0.3, 1 and 2 (alpha 0.4), and on 1,800 random rows at alpha 0.1, 0.4, 0.7.

Two other statements of Top-H keep different sets; neither is this module's:
- The bound on the renormalized kept set, H(p_S / p(S)) <= alpha * H(p) over the whole vocabulary
  (their README and the transformers pull request's wording): `decoding/top_h_renorm`. On those
  SmolLM2 rows it keeps 58.0 tokens on average at T 2 where this rule keeps 13.6 (6.2 and 4.3 at T 1).
- transformers' TopHLogitsWarper (`generate(top_h=...)`, added by their pull request #40837)
  renormalizes over the 100 candidates before the same cumulative test. It agrees with this
  module when the candidates hold all the mass (a vocabulary of at most 100 tokens: a test checks
  it) and keeps fewer tokens when they do not (high temperature).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.decoding.base import LogitsProcessor, NEG_INF, Sampler
from methods.registry import register

CANDIDATES = 100  # the authors' top_n


def kept_count(candidate_probs: torch.Tensor, alpha: float) -> torch.Tensor:
    """(..., K) probabilities of the K most likely tokens, sorted descending and NOT renormalized
    over them -> how many leading candidates Top-H keeps, (...), at least 1."""
    partial = -torch.xlogy(candidate_probs, candidate_probs).cumsum(-1)  # -sum_{i<=k} p_i log p_i
    budget = alpha * partial[..., -1:]
    within = (partial <= budget) & (candidate_probs > 0)
    # the largest k within the budget: the same as stopping at the first k over it, since the
    # partial sums never decrease, and not cut short by a parallel cumsum's last-bit wobble
    prefix_length = torch.arange(1, partial.shape[-1] + 1, device=partial.device)
    return (within * prefix_length).amax(-1).clamp_min(1)


class TopHProcessor(LogitsProcessor):
    def __init__(self, alpha: float, candidates: int = CANDIDATES):
        self.alpha = alpha
        self.candidates = candidates

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        # the full softmax, as theirs: exp(logit - logsumexp) would lose the top token's 1 - p to
        # rounding on peaked rows (logits / T in the hundreds at T 0.3)
        probs = scores.float().softmax(-1)
        candidate_probs, order = probs.topk(min(self.candidates, probs.shape[-1]), dim=-1)
        keep = kept_count(candidate_probs, self.alpha)
        kept_sorted = torch.arange(order.shape[-1], device=scores.device) < keep.unsqueeze(-1)
        drop = torch.ones_like(scores, dtype=torch.bool).scatter_(-1, order, ~kept_sorted)
        return scores.masked_fill(drop, NEG_INF)


@register("decoding/top_h")
class TopH(Sampler):
    @dataclass(frozen=True)
    class Params:
        alpha: float = 0.4  # entropy budget as a fraction of the distribution's entropy, in [0, 1] (authors' default 0.4)

        def __post_init__(self):
            if not 0 <= self.alpha <= 1:
                raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")

    def truncation(self):
        return [TopHProcessor(self.params.alpha)]
