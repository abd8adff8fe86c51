"""The PINN cards: they load at every scale, their claims name rows and metrics that exist, and a
tiny scale runs end to end through the family contract into a table with its claims and plots."""
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "bench"))
from pinn_smoke import load_card, run_all  # noqa: E402 (bench/ on the path first)

CARDS = sorted((REPO / "configs" / "pinn").glob("*.yaml"))


def test_there_is_a_card_per_paper():
    assert {p.stem for p in CARDS} == {"causal_wang2022", "failure_modes_krishnapriyan2021"}


@pytest.mark.parametrize("path", CARDS, ids=lambda p: p.stem)
def test_cards_load_at_every_scale_and_pass_the_family_checks(path):
    from entrobench.protocols.pinn.family import FAMILY

    card = load_card(path)
    assert {"tiny", "smoke", "full"} <= set(card.spec.scales)
    for scale in card.spec.scales:
        scaled = card.scale(scale)
        FAMILY.check(scaled)
        assert scaled.protocol.device == ("cuda" if scale == "full" else "cpu")
    assert card.claims


@pytest.mark.slow
def test_a_tiny_scale_writes_records_tables_with_claims_plots_and_mlflow_runs(tmp_path):
    cards = [load_card(p) for p in CARDS]
    timings = run_all(cards, "tiny", tmp_path / "results", workers=1, fresh=False)
    assert len(timings["cells"]) == 5 + 2 * 3  # rows at beta 50, and problems x rows (one seed)
    failure = (tmp_path / "results" / "failure_modes_krishnapriyan2021" / "tiny" / "table.md").read_text()
    assert "## convection · all settings" in failure and "`vanilla.rel_l2 > 0.5`" in failure
    causal = (tmp_path / "results" / "causal_wang2022" / "tiny" / "table.md").read_text()
    assert "`causal.rel_l2 < vanilla.rel_l2`" in causal and "skipped" in causal  # the Lagrangian PINN on Allen-Cahn
    plots = sorted(p.name for p in (tmp_path / "results" / "causal_wang2022" / "tiny" / "plots").glob("*.png"))
    assert plots == ["allen_cahn-published-curves.png", "allen_cahn-rel_l2.png", "burgers-published-curves.png", "burgers-rel_l2.png"]
    fields = list((tmp_path / "results" / "cells").rglob("field.png"))
    assert len(fields) == len(timings["cells"]) - 1  # every cell that ran draws its field
    from entrobench import aggregate, tracking

    for card in cards:  # the records import into MLflow as the engine's track rule does it
        records = [r for r in aggregate.load_records(card, "tiny", tmp_path / "results") if r["status"] != "missing"]
        summary = tracking.track(card, "tiny", records, tmp_path / "results")
        scaled = card.scale("tiny")
        assert summary["created"] == len(records) == len(scaled.methods) * len(scaled.datasets) * len(scaled.settings)
