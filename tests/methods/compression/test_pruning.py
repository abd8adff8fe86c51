"""Pruning masks hit the requested sparsity exactly and stay applied through optimizer steps;
the PQ Index and each method's schedule on hand-made inputs."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from methods.compression.base import (
    apply_masks,
    global_magnitude_masks,
    pq_index,
    prunable,
    sparsity_of,
)
from methods.compression.imp import IMP
from methods.compression.magnitude import OneShotMagnitude
from methods.compression.sap import SAP


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 6 * 6, 7))  # 36 + 1008 prunable


@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.7, 0.9, 0.333])
def test_masks_hit_the_sparsity_exactly(sparsity):
    weights = prunable(small_net())
    masks = global_magnitude_masks(weights, sparsity)
    total = sum(w.numel() for w in weights)
    assert total - sum(int(m.sum()) for m in masks) == round(sparsity * total)


def test_masks_are_exact_even_when_every_magnitude_ties():
    weights = [torch.ones(10, 10), torch.ones(7)[None]]
    masks = global_magnitude_masks(weights, 0.5)
    assert sum(int((~m).sum()) for m in masks) == round(0.5 * 107)


def test_global_masks_remove_the_smallest_magnitudes_across_tensors_and_only_shrink():
    a, b = torch.tensor([[0.1, -5.0], [0.2, 3.0]]), torch.tensor([[-0.05, 4.0]])
    first = global_magnitude_masks([a, b], 0.5)  # the three smallest |w|: 0.05, 0.1, 0.2
    assert first[0].tolist() == [[False, True], [False, True]] and first[1].tolist() == [[False, True]]
    a2 = torch.where(first[0], a, torch.tensor(9.0))  # pruned entries growing back must not be re-kept
    second = global_magnitude_masks([a2, b], 2 / 3, first)
    assert not any((s & ~f).any() for s, f in zip(second, first))
    assert sparsity_of(second) == pytest.approx(4 / 6)


def test_masks_stay_applied_after_optimizer_steps():
    net = small_net()
    weights = prunable(net)
    masks = global_magnitude_masks(weights, 0.7)
    apply_masks(weights, masks)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 7, (16,))
    for _ in range(5):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        moved = any(bool((w[~m] != 0).any()) for w, m in zip(weights, masks))
        apply_masks(weights, masks)
        assert all(bool((w[~m] == 0).all()) for w, m in zip(weights, masks))
    assert moved  # without re-applying, momentum and weight decay do move pruned weights
    zeros = sum(int((w == 0).sum()) for w in weights)
    assert zeros == round(0.7 * sum(w.numel() for w in weights))


def test_pq_index_on_hand_made_vectors():
    assert pq_index(torch.ones(4)) == pytest.approx(0.0)  # equal magnitudes: not sparse
    # (mean sqrt|w|)^2 / mean|w| = (2/4)^2 / 1 = 1/4 for (4, 0, 0, 0)
    assert pq_index(torch.tensor([4.0, 0.0, 0.0, 0.0])) == pytest.approx(0.75)
    # (1, 4): ((1 + 2) / 2)^2 / 2.5 = 0.9
    assert pq_index(torch.tensor([1.0, -4.0])) == pytest.approx(0.1)
    # p = 1, q = 2: 1 - sqrt(d) |w|_1 / |w|_2 scaled: (mean |w|) / sqrt(mean w^2) = 2.5 / sqrt(8.5)
    assert pq_index(torch.tensor([1.0, 4.0]), p=1.0, q=2.0) == pytest.approx(1 - 2.5 / 8.5**0.5)
    with pytest.raises(ValueError, match="0 < p < q"):
        pq_index(torch.ones(3), p=1.0, q=1.0)


def test_one_shot_goes_straight_to_the_target():
    assert OneShotMagnitude().next_sparsity(0.0, 0.7, torch.ones(3)) == 0.7
    assert not OneShotMagnitude.ITERATIVE


def test_imp_prunes_a_fixed_share_of_what_is_left_and_stops_on_the_target():
    imp = IMP(IMP.Params(rate=0.2))
    assert imp.next_sparsity(0.0, 0.5, torch.ones(3)) == pytest.approx(0.2)
    assert imp.next_sparsity(0.2, 0.5, torch.ones(3)) == pytest.approx(0.36)
    assert imp.next_sparsity(0.488, 0.5, torch.ones(3)) == pytest.approx(0.5)  # 0.5904 would pass the target


def test_sap_prunes_what_the_pq_index_says_is_compressible():
    kept = torch.tensor([1.0] * 60 + [4.0] * 40)  # (mean sqrt|w|)^2 / mean|w| = 1.4^2 / 2.2: I = 0.1091
    # p .5, q 1, eta 0: keep bound ceil(100 (1 - I)) = ceil(89.09) = 90 -> prune floor(100 min(gamma 0.1, beta)) / 100
    assert SAP().prune_share(kept) == pytest.approx(0.10)
    assert SAP(SAP.Params(gamma=2.0)).prune_share(kept) == pytest.approx(0.20)
    assert SAP(SAP.Params(gamma=20.0)).prune_share(kept) == pytest.approx(0.90)  # capped by beta
    assert SAP().prune_share(torch.ones(10)) == 0.0  # nothing compressible: no pruning asked for
    assert SAP().next_sparsity(0.5, 0.7, kept) == pytest.approx(0.55)
    assert SAP(SAP.Params(gamma=20.0)).next_sparsity(0.5, 0.7, kept) == pytest.approx(0.7)


def test_rewind_and_rates_are_checked():
    with pytest.raises(ValueError, match="rewind"):
        IMP.Params(rewind="later")
    with pytest.raises(ValueError, match="rate"):
        IMP.Params(rate=0.0)
    assert IMP.Params().rewind == "early" and SAP.Params().rewind == "init" and OneShotMagnitude.Params().rewind == "none"
