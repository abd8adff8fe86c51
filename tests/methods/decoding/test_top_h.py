"""Top-H as the authors' processor runs it: kept sets worked out by hand on small vectors (the
arithmetic is in the comments), the 100-candidate cap, temperature first, the edges their code
does not handle, and exact agreement with transformers' TopHLogitsWarper where the two rules
coincide (a vocabulary of at most 100 tokens)."""
from __future__ import annotations

import math

import pytest
import torch
from transformers.generation.logits_process import TopHLogitsWarper

from methods import registry
from methods.decoding.top_h import CANDIDATES, TopH, TopHProcessor


def _kept(logits: torch.Tensor, alpha: float) -> torch.Tensor:
    return torch.isfinite(TopHProcessor(alpha)(None, logits.clone()))


def _kept_ids(logits: torch.Tensor, alpha: float) -> set[int]:
    return set(torch.nonzero(_kept(logits, alpha)[0]).flatten().tolist())


# p = (1/2, 1/4, 1/8, 1/8), placed out of order in the vocabulary. In bits, -p log2 p is
# 0.5, 0.5, 0.375, 0.375 for the tokens by decreasing p: partial sums 0.5, 1.0, 1.375, 1.75, and
# the budget is alpha * 1.75 (the candidates are the whole vocabulary).
DYADIC = torch.tensor([[math.log(1 / 8), math.log(1 / 2), math.log(1 / 8), math.log(1 / 4)]])


@pytest.mark.parametrize(("alpha", "expected"), [
    (0.0, {1}),      # budget 0: the top token only
    (0.4, {1}),      # 0.7 bits: 0.5 fits, 1.0 does not
    (0.55, {1}),     # 0.9625: 1.0 still does not (the renormalized rule keeps two here)
    (0.6, {1, 3}),   # 1.05: 1.0 fits, 1.375 does not
    (1.0, {0, 1, 2, 3}),  # 1.75: every candidate, the budget met with equality
])
def test_dyadic_kept_sets_by_hand(alpha, expected):
    assert _kept_ids(DYADIC, alpha) == expected


def test_a_tie_at_the_cut_keeps_exactly_one_of_the_tied_tokens():
    """alpha 0.8: budget 1.4 bits, partial sums 1.375 then 1.75: three tokens, the third one of the
    two tokens of probability 1/8 (torch.topk's order, as in the authors' code)."""
    kept = _kept_ids(DYADIC, 0.8)
    assert len(kept) == 3 and {1, 3} <= kept and len(kept & {0, 2}) == 1


def test_near_deterministic_row_by_hand():
    """logits (10, 1, 0, -1, -2): p = 0.999808, 1.2339e-4, 4.539e-5, 1.670e-5, 6.14e-6;
    -p ln p = 1.916e-4, 1.1105e-3, 4.539e-4, 1.837e-4, 7.37e-5 nats, partial sums 1.916e-4,
    1.3021e-3, 1.7560e-3, 1.9397e-3, 2.0134e-3 = the budget at alpha 1."""
    logits = torch.tensor([[10.0, 1.0, 0.0, -1.0, -2.0]])
    assert _kept_ids(logits, 0.0) == {0}
    assert _kept_ids(logits, 0.4) == {0}  # budget 8.054e-4 < 1.3021e-3
    assert _kept_ids(logits, 0.7) == {0, 1}  # budget 1.4094e-3: 1.3021e-3 fits, 1.7560e-3 does not
    assert _kept_ids(logits, 1.0) == {0, 1, 2, 3, 4}


def test_entropy_below_1e_6_at_alpha_zero_and_one():
    """logits (25, 0 x 99): H(p) = 99 e^-25 (25 + 1) ~ 3.6e-8 nats. alpha 0 keeps the top token,
    alpha 1 all 100 (the budget is the whole partial sum)."""
    logits = torch.zeros(1, 100)
    logits[0, 0] = 25.0
    assert _kept_ids(logits, 0.0) == {0}
    assert _kept(logits, 1.0).all()


def test_the_budget_is_the_100_candidates_share_of_the_entropy():
    """Uniform over 200 tokens: each candidate adds c = ln(200) / 200. The budget is alpha times
    the 100 candidates' 100 c, not alpha times H(p) = 200 c: at alpha 0.455, 45 tokens (45 c <=
    45.5 c < 46 c), not 91. At alpha 1 the cap itself: 100 of 200."""
    logits = torch.zeros(1, 200)
    assert int(_kept(logits, 0.455).sum()) == 45
    assert int(_kept(logits, 1.0).sum()) == CANDIDATES == 100


def test_never_more_than_100_tokens_on_a_flat_row():
    logits = torch.randn(3, 5000, generator=torch.Generator().manual_seed(0)) * 0.01
    assert (_kept(logits, 1.0).sum(-1) == 100).all()


def test_temperature_comes_first():
    """logits 2 ln(4, 2, 1, 1). At T 2, p = (1/2, 1/4, 1/8, 1/8): alpha 0.6 keeps two (above). At
    T 1, p = (16, 4, 1, 1) / 22: -p ln p = 0.23160, 0.30995, 0.14050, 0.14050, budget
    0.6 * 0.82256 = 0.49353 < 0.23160 + 0.30995: one token. Kept logits are the tempered ones."""
    logits = 2 * torch.log(torch.tensor([[4.0, 2.0, 1.0, 1.0]]))
    sampler = TopH(TopH.Params(alpha=0.6))
    for temperature, kept in [(2.0, [True, True, False, False]), (1.0, [True, False, False, False])]:
        scores = logits.clone()
        for proc in sampler.processors(temperature):
            scores = proc(None, scores)
        assert torch.isfinite(scores[0]).tolist() == kept
        assert torch.equal(scores[torch.isfinite(scores)], (logits / temperature)[torch.isfinite(scores)])


def test_minus_inf_logits_are_never_kept_and_do_not_produce_nan():
    """The authors' code turns 0 * log 0 into NaN and never stops; here a token of probability 0
    adds nothing to the sums and is never kept, even at alpha 1."""
    logits = torch.tensor([[2.0, 1.0, float("-inf"), 0.5, float("-inf")]])
    out = TopHProcessor(1.0)(None, logits.clone())
    assert not torch.isnan(out).any()
    assert torch.isfinite(out[0]).tolist() == [True, True, False, True, False]


@pytest.mark.parametrize("vocab", [7, 50, 100])
@pytest.mark.parametrize("alpha", [0.1, 0.4, 0.7, 0.95])
def test_matches_transformers_top_h_when_the_candidates_hold_all_the_mass(vocab, alpha):
    """transformers' TopHLogitsWarper renormalizes over its 100 candidates; with at most 100 tokens
    in the vocabulary that is the full softmax, and the two rules keep the same tokens. Not at
    alpha 1: there it compares its running sum with an entropy computed another way, and rounding
    drops the last candidates (the authors' loop, likewise, keeps 99 or runs off its list)."""
    gen = torch.Generator().manual_seed(vocab)
    logits = torch.randn(64, vocab, generator=gen) * torch.rand(64, 1, generator=gen) * 6
    theirs = torch.isfinite(TopHLogitsWarper(top_h=alpha)(None, logits.clone()))
    assert torch.equal(_kept(logits, alpha), theirs)


def test_registered_with_the_authors_default_and_alpha_checked():
    assert registry.get("decoding/top_h") is TopH
    assert math.isclose(TopH.Params().alpha, 0.4)
    with pytest.raises(ValueError, match="alpha"):
        TopH.Params(alpha=1.5)
