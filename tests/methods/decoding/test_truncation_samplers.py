"""Our top-p and min-p keep exactly the tokens transformers' own warpers keep; top-k, greedy and
temperature do what they say; entropy bookkeeping skips finished rows."""
from __future__ import annotations

import pytest
import torch
from transformers.generation.logits_process import (
    MinPLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from methods import registry
from methods.decoding.base import TokenStats, entropy


def _random_logits(seed: int, shape=(16, 500)) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    scale = torch.rand(shape[0], 1, generator=gen) * 6  # rows from flat to peaked
    return torch.randn(*shape, generator=gen) * scale


def _kept_by(method: str, params: dict, logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    cls = registry.get(method)
    scores = logits.clone()
    for proc in cls(cls.Params(**params)).processors(temperature):
        scores = proc(None, scores)
    return torch.isfinite(scores)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, 0.95, 1.0])
def test_top_p_matches_transformers(p):
    for seed in range(5):
        logits = _random_logits(seed)
        ours = _kept_by("decoding/top_p", {"p": p}, logits)
        theirs = torch.isfinite(TopPLogitsWarper(top_p=p)(None, logits.clone()))
        assert torch.equal(ours, theirs)


@pytest.mark.parametrize("p_base", [0.0, 0.05, 0.1, 0.5, 1.0])
def test_min_p_matches_transformers(p_base):
    for seed in range(5):
        logits = _random_logits(seed)
        ours = _kept_by("decoding/min_p", {"p_base": p_base}, logits)
        theirs = torch.isfinite(MinPLogitsWarper(min_p=p_base)(None, logits.clone()))
        assert torch.equal(ours, theirs)


def test_top_k_matches_transformers_after_temperature():
    logits = _random_logits(7)
    ours = _kept_by("decoding/top_k", {"k": 50}, logits, temperature=1.5)
    theirs = torch.isfinite(TopKLogitsWarper(top_k=50)(None, logits / 1.5))
    assert torch.equal(ours, theirs)
    assert (ours.sum(-1) == 50).all()


def test_greedy_keeps_the_argmax_and_temperature_keeps_everything():
    logits = _random_logits(3)
    greedy = _kept_by("decoding/greedy", {}, logits, temperature=2.0)
    assert (greedy.sum(-1) == 1).all() and greedy.gather(-1, logits.argmax(-1, keepdim=True)).all()
    assert _kept_by("decoding/temperature", {}, logits, temperature=0.7).all()


def test_temperature_comes_before_truncation():
    """min-p at T = 2 keeps more tokens than at T = 0.5: it sees the tempered distribution."""
    logits = _random_logits(4)
    cold = _kept_by("decoding/min_p", {"p_base": 0.1}, logits, temperature=0.5).sum()
    hot = _kept_by("decoding/min_p", {"p_base": 0.1}, logits, temperature=2.0).sum()
    assert hot > cold


@pytest.mark.parametrize("method", registry.available("decoding"))
def test_rows_of_a_batch_are_truncated_independently_and_minus_inf_stays_out(method):
    """A batch mixes a peaked row, a flat one and one padded with -inf (a shorter vocabulary):
    each row keeps what it keeps alone, a -inf logit is never kept, and nothing turns NaN."""
    peaked = torch.tensor([8.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    flat = torch.zeros(6)
    short = torch.tensor([1.0, 0.9, 0.8, float("-inf"), float("-inf"), float("-inf")])
    batch = torch.stack([peaked, flat, short])
    kept = _kept_by(method, {}, batch, temperature=1.5)
    for row in range(3):
        assert kept[row].tolist() == _kept_by(method, {}, batch[row : row + 1], temperature=1.5)[0].tolist()
    assert kept.any(-1).all() and not kept[2, 3:].any()
    cls = registry.get(method)
    scores = batch.clone()
    for proc in cls(cls.Params()).processors(1.5):
        scores = proc(None, scores)
    assert not torch.isnan(scores).any()


def test_token_stats_skip_finished_rows_and_measure_nats():
    stats = TokenStats(stop_ids={0})
    input_ids = torch.tensor([[5, 7], [5, 0]])  # the second row has finished
    uniform = torch.zeros(2, 8)
    stats(input_ids, uniform)
    mean_entropy, mean_kept = stats.means()
    assert stats.count == 1
    assert mean_entropy == pytest.approx(torch.log(torch.tensor(8.0)).item())
    assert mean_kept == 8
    assert entropy(torch.tensor([0.0, float("-inf")])).item() == pytest.approx(0.0)
