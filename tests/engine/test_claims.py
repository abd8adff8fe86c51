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


def test_a_name_can_pin_another_setting():
    claim = parse_claim("top_h.acc@t2_0 - top_h.acc@t0_7 > top_p.acc@t2_0 - top_p.acc@t0_7")
    assert claim.references == (("top_h", "acc@t2_0"), ("top_h", "acc@t0_7"), ("top_p", "acc@t2_0"), ("top_p", "acc@t0_7"))
    values = {("top_h", "acc@t2_0"): 0.5, ("top_h", "acc@t0_7"): 0.6, ("top_p", "acc@t2_0"): 0.1, ("top_p", "acc@t0_7"): 0.6}
    verdict = judge(claim, values)
    assert verdict.status == HOLDS and verdict.lhs == pytest.approx(-0.1) and verdict.rhs == pytest.approx(-0.5)
    assert judge(parse_claim("top_h.acc@t1_0 > 0"), values).status == NO_DATA


def test_only_a_setting_name_may_follow_the_at_sign():
    with pytest.raises(ValueError, match="not allowed"):
        parse_claim("top_h.acc @ 2 > 0")
    with pytest.raises(ValueError, match="not allowed"):
        parse_claim("top_h.acc @ top_p.acc > 0")
