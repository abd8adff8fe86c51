"""pass@k and maj@k, by hand."""
from __future__ import annotations

import pytest

from entrobench.protocols.rlvr.evaluate import k_values, majority_correct, pass_at_k


def test_pass_at_k_matches_hand_values():
    assert pass_at_k(8, 0, 1) == 0.0
    assert pass_at_k(8, 8, 4) == 1.0
    assert pass_at_k(8, 2, 1) == pytest.approx(2 / 8)
    assert pass_at_k(8, 2, 2) == pytest.approx(1 - (6 * 5) / (8 * 7))  # 1 - C(6,2)/C(8,2)
    assert pass_at_k(8, 1, 8) == 1.0
    with pytest.raises(ValueError, match="at least 4 samples"):
        pass_at_k(2, 1, 4)


def test_majority_vote_and_its_tie_break():
    assert majority_correct(["12", "12", "13"], [True, True, False])
    assert not majority_correct(["13", "12", "13"], [False, True, False])
    assert majority_correct(["12", "13"], [True, False])  # a tie goes to the answer seen first
    assert not majority_correct(["13", "12"], [False, True])


def test_k_values_are_powers_of_two_and_k():
    assert k_values(8) == [1, 2, 4, 8]
    assert k_values(6) == [1, 2, 4, 6]
    assert k_values(1) == [1]
