"""ECE, NLL, entropy and teacher KL on hand-made logits."""
from __future__ import annotations

import math

import pytest
import torch

from entrobench.protocols.compression.evaluate import (
    classification_metrics,
    ece_pct,
    reliability,
)


def test_ece_on_a_hand_made_case():
    # two predictions at confidence 0.9 (one right, one wrong) and two at 0.6 (both right):
    # bin 0.9: |0.5 - 0.9| x 2/4 = 0.2; bin 0.6: |1.0 - 0.6| x 2/4 = 0.2 -> ECE 0.4 = 40%
    l9, l6 = math.log(9.0), math.log(1.5)
    logits = torch.tensor([[l9, 0.0], [l9, 0.0], [l6, 0.0], [0.0, l6]])
    y = torch.tensor([0, 1, 0, 1])
    assert ece_pct(logits, y) == pytest.approx(40.0, abs=1e-6)
    r = reliability(logits, y)
    assert sum(r["count"]) == 4 and r["count"][13] == 2 and r["count"][8] == 2  # (0.8667, 0.9333] and (0.5333, 0.6]


def test_classification_metrics_by_hand():
    logits = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])  # p = (3/4, 1/4) and (1/2, 1/2)
    y = torch.tensor([0, 1])
    m = classification_metrics(logits, y, teacher=torch.zeros(2, 2))
    assert m["top1_pct"] == pytest.approx(50.0)  # argmax of a tie is class 0: wrong for the second
    assert m["nll"] == pytest.approx((-math.log(0.75) + math.log(2)) / 2)
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert m["entropy"] == pytest.approx((h + math.log(2)) / 2)
    # KL(uniform || (3/4, 1/4)) = 1/2 ln(2/3) + 1/2 ln 2, and 0 for the second
    assert m["teacher_kl"] == pytest.approx((0.5 * math.log(2 / 3) + 0.5 * math.log(2)) / 2)
