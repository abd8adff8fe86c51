"""A method that declares what it cannot depend on (INVARIANT_TO) runs once for all such cells.

Greedy decoding ignores temperature and seed: on the Top-H card its 8 smoke cells (4 temperatures
x 2 seeds) read one record, which fills its whole row, while every sampler keeps its own runs."""
from __future__ import annotations

from pathlib import Path

from entrobench import aggregate, record, tables
from entrobench.card import load_card
from entrobench.cells import expand

REPO = Path(__file__).resolve().parents[2]
CARD = REPO / "configs" / "decoding" / "top_h_potraghloo2025.yaml"


def test_greedy_cells_share_one_record_and_samplers_do_not():
    cells = expand(load_card(CARD).scale("smoke"))
    greedy = [c for c in cells if c.method == "greedy"]
    top_h = [c for c in cells if c.method == "top_h"]

    assert len(greedy) == 8 and len({c.record_path() for c in greedy}) == 1
    assert [c.shared for c in greedy] == [False] + [True] * 7  # the first cell runs, the rest read it
    assert len(top_h) == 8 and len({c.record_path() for c in top_h}) == 8
    assert not any(c.shared for c in top_h)


def test_a_shared_record_fills_every_place_of_its_row(tmp_path):
    card = load_card(CARD)
    results = tmp_path / "results"
    for cell in expand(card.scale("smoke")):
        if cell.shared:
            continue  # written once, by the cell that runs
        accuracy = 0.6 if cell.method == "greedy" else 0.5 - 0.1 * float(cell.setting[1:].replace("_", ".")) + 0.01 * cell.seed
        base = {"dataset": cell.dataset, "setting": cell.setting, "seed": cell.seed, "status": record.OK}
        record.write(cell.record_path(results), {**base, "metrics": {"acc_mean": accuracy}})

    greedy = [r for r in aggregate.load_records(card, "smoke", results) if r["method"] == "greedy"]
    assert sorted((r["setting"], r["seed"]) for r in greedy) == [(t, s) for t in ("t0_7", "t1_0", "t1_5", "t2_0") for s in (0, 1)]
    assert all(r["status"] == record.OK for r in greedy)

    md = tables.render(card, "smoke", results, tmp_path / "out")["md"].read_text()
    greedy_row = next(line for line in md.splitlines() if line.startswith("| Greedy"))
    assert greedy_row.count("0.60 ± 0.00") == 4  # one column per temperature
    assert "Greedy cannot depend on setting.temperature, seed: one run fills every such cell" in md
