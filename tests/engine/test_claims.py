"""Claims are parsed without eval and judged on means; missing results give no verdict."""
from __future__ import annotations

import pytest

from entrobench.claims import FAILS, HOLDS, NO_DATA, judge, parse_claim


def test_claim_references_in_order():
    claim = parse_claim("tent.error_pct <= source.error_pct - 5")
    assert claim.references == (("tent", "error_pct"), ("source", "error_pct"))


@pytest.mark.parametrize(
    "text, values, status",
    [
        ("tent.error_pct <= source.error_pct - 5", {("tent", "error_pct"): 20.0, ("source", "error_pct"): 30.0}, HOLDS),
        ("tent.error_pct <= source.error_pct - 5", {("tent", "error_pct"): 26.0, ("source", "error_pct"): 30.0}, FAILS),
        ("eata.backward_per_1k < 0.5 * tent.backward_per_1k", {("eata", "backward_per_1k"): 10.0, ("tent", "backward_per_1k"): 15.6}, FAILS),
        ("-a.x > -b.x", {("a", "x"): 1.0, ("b", "x"): 2.0}, HOLDS),
    ],
)
def test_judge(text, values, status):
    assert judge(parse_claim(text), values).status == status


def test_missing_result_gives_no_data_not_a_verdict():
    verdict = judge(parse_claim("a.x < b.x"), {("a", "x"): 1.0})
    assert verdict.status == NO_DATA and "b.x" in verdict.detail


@pytest.mark.parametrize("text", ["a.x", "a.x < b.x < c.x", "a.x == b.x", "f(a.x) < 1", "a.x ** 2 < 1", "a.b.c < 1"])
def test_only_single_comparisons_of_arithmetic_are_allowed(text):
    with pytest.raises(ValueError):
        parse_claim(text)
