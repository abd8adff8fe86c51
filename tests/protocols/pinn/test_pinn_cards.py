"""The PINN cards: they load at every scale, their claims name rows and metrics that exist, and a
tiny scale runs end to end through the DAG into tables with claims, field plots and MLflow runs."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from entrobench.card import load_card

REPO = Path(__file__).resolve().parents[3]
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
    targets = [f"results/{p.stem}/tiny/table.md" for p in CARDS]
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores", "2", "--directory", str(tmp_path),
                           "--config", f"configs={REPO / 'configs'}", "--", *targets], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = tmp_path / "results"
    records = list((results / "cells" / "tiny").rglob("seed*.json"))
    assert len(records) == 5 + 2 * 3  # rows at beta 50, and problems x rows (one seed)
    failure = (results / "failure_modes_krishnapriyan2021" / "tiny" / "table.md").read_text()
    assert "## convection · all settings" in failure and "`vanilla.rel_l2 > 0.5`" in failure
    causal = (results / "causal_wang2022" / "tiny" / "table.md").read_text()
    assert "`causal.rel_l2 < vanilla.rel_l2`" in causal and "skipped" in causal  # the Lagrangian PINN on Allen-Cahn
    plots = sorted(p.name for p in (results / "causal_wang2022" / "tiny" / "plots").glob("*.png"))
    assert plots == ["allen_cahn-published-curves.png", "allen_cahn-rel_l2.png", "burgers-published-curves.png", "burgers-rel_l2.png"]
    ok = [r for r in records if json.loads(r.read_text())["status"] == "ok"]
    fields = list((results / "cells").rglob("field.png"))
    assert len(fields) == len(ok) == len(records) - 1  # every cell that ran draws its field
    for card in CARDS:  # one MLflow run per cell, made by the DAG's track rule
        scaled = load_card(card).scale("tiny")
        summary = json.loads((results / card.stem / "tiny" / "mlflow.json").read_text())
        assert summary["created"] == len(scaled.methods) * len(scaled.datasets) * len(scaled.settings)
