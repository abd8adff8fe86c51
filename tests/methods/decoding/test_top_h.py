"""Top-H on hand-made distributions: the bound, the paper's greedy rule, the true optimum found by
brute force on small vocabularies, and degenerate inputs."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from methods.decoding.top_h import TopH, TopHProcessor, kept_count

TOL = 1e-5


def _entropy(p: torch.Tensor) -> float:
    p = p[p > 0].double()
    q = p / p.sum()
    return float(-(q * q.log()).sum())


def _kept(logits: torch.Tensor, alpha: float) -> torch.Tensor:
    return torch.isfinite(TopHProcessor(alpha)(None, logits.clone()))


def _greedy_by_hand(p: list[float], alpha: float) -> set[int]:
    """The paper's rule written out token by token: add in order of decreasing probability and
    stop before the first token that breaks H(q) <= alpha * H(p)."""
    bound = alpha * _entropy(torch.tensor(p))
    order = sorted(range(len(p)), key=lambda i: -p[i])
    kept = [order[0]]
    for i in order[1:]:
        if p[i] == 0 or _entropy(torch.tensor([p[j] for j in kept + [i]])) > bound + TOL:
            break
        kept.append(i)
    return set(kept)


def _optimum(p: torch.Tensor, alpha: float) -> float:
    """max p(S) over every non-empty S with H(p restricted to S) <= alpha * H(p)."""
    bound = alpha * _entropy(p)
    best = 0.0
    for r in range(1, len(p) + 1):
        for subset in itertools.combinations(range(len(p)), r):
            sub = p[list(subset)]
            if _entropy(sub) <= bound + 1e-12:
                best = max(best, float(sub.sum()))
    return best


@pytest.mark.parametrize("alpha", [0.2, 0.4, 0.6, 0.9])
def test_kept_set_is_the_greedy_rule_and_within_the_bound(alpha):
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        logits = torch.randn(1, 12, generator=gen) * 2
        p = logits.softmax(-1)[0]
        kept = _kept(logits, alpha)[0]
        assert set(torch.nonzero(kept).flatten().tolist()) == _greedy_by_hand(p.tolist(), alpha)
        assert _entropy(p[kept]) <= alpha * _entropy(p) + TOL


def test_greedy_never_beats_and_never_breaks_the_brute_force_optimum(record_property):
    """ECMM is NP-hard: the greedy may fall short of the optimum, never above it, and never
    outside the bound. The test records the gap it finds (pytest --junitxml shows it)."""
    gen = torch.Generator().manual_seed(1)
    gaps = []
    for trial in range(120):
        n = 4 + trial % 6  # vocabularies of 4..9 tokens: 2^9 subsets at most
        alpha = [0.2, 0.4, 0.6][trial % 3]
        logits = torch.randn(1, n, generator=gen) * (0.5 + trial % 4)
        p = logits.softmax(-1)[0].double()
        kept = _kept(logits, alpha)[0]
        greedy_mass = float(p[kept].sum())
        best = _optimum(p, alpha)
        assert _entropy(p[kept]) <= alpha * _entropy(p) + TOL
        assert greedy_mass <= best + 1e-9
        gaps.append(best - greedy_mass)
    record_property("topH_mass_gap_max", max(gaps))
    record_property("topH_mass_gap_mean", sum(gaps) / len(gaps))
    record_property("topH_optimal_share", sum(g < 1e-9 for g in gaps) / len(gaps))


def test_one_hot_keeps_the_one_token():
    logits = torch.full((1, 8), float("-inf"))
    logits[0, 3] = 0.0
    assert _kept(logits, 0.4)[0].tolist() == [i == 3 for i in range(8)]


def test_uniform_keeps_all_at_alpha_one_and_one_below():
    logits = torch.zeros(1, 16)
    assert _kept(logits, 1.0).all()
    # any proper subset of a uniform distribution has entropy log k < log 16 but > alpha log 16 for k > 16^alpha
    kept = _kept(logits, 0.5)[0]
    assert int(kept.sum()) == 4  # log 4 = 0.5 log 16: the bound is met with equality


def test_minus_inf_logits_are_never_kept_and_do_not_produce_nan():
    logits = torch.tensor([[2.0, 1.0, float("-inf"), 0.5, float("-inf")]])
    out = TopHProcessor(1.0)(None, logits.clone())
    assert not torch.isnan(out).any()
    assert torch.isfinite(out[0]).tolist() == [True, True, False, True, False]


def test_rows_of_a_batch_are_truncated_independently():
    """A batch mixes a peaked row, a flat one and one padded with -inf (a shorter vocabulary)."""
    peaked = torch.tensor([8.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    flat = torch.zeros(6)
    short = torch.tensor([1.0, 0.9, 0.8, float("-inf"), float("-inf"), float("-inf")])
    batch = torch.stack([peaked, flat, short])
    kept = _kept(batch, 0.6)
    for row in range(3):
        assert kept[row].tolist() == _kept(batch[row : row + 1], 0.6)[0].tolist()
    assert not kept[2, 3:].any()


def test_alpha_zero_is_greedy_and_kept_count_grows_with_alpha():
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(4, 100, generator=gen)
    assert (_kept(logits, 0.0).sum(-1) == 1).all()
    counts = [kept_count(torch.sort(logits.softmax(-1), descending=True).values, a) for a in (0.1, 0.3, 0.6, 1.0)]
    for smaller, larger in zip(counts, counts[1:]):
        assert (smaller <= larger).all()


def test_params_reject_an_alpha_outside_zero_one():
    with pytest.raises(ValueError, match="alpha"):
        TopH.Params(alpha=1.5)
    assert math.isclose(TopH.Params().alpha, 0.4)


@pytest.mark.parametrize("spread", [8.0, 0.05])  # peaked: a few tokens kept; flat: past the head
def test_the_head_shortcut_keeps_exactly_what_a_full_sort_keeps(spread):
    """Top-H looks at the HEAD most likely tokens first and sorts everything only when the kept
    set reaches past them; either way the kept set is the full-sort rule's."""
    from methods.decoding.top_h import HEAD

    logits = torch.randn(6, 5000, generator=torch.Generator().manual_seed(3)) * spread
    probs = logits.softmax(-1)
    sorted_probs, order = probs.sort(-1, descending=True)
    keep = kept_count(sorted_probs, 0.8)
    expected = torch.zeros_like(logits, dtype=torch.bool)
    for row in range(logits.shape[0]):
        expected[row, order[row, : keep[row]]] = True

    assert torch.equal(_kept(logits, 0.8), expected)
    assert (keep < HEAD).all() if spread > 1 else (keep > HEAD).any()
