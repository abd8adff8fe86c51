"""Cost accounting: what a record says a cell used, and the table's optional cost column."""
from __future__ import annotations

import pytest

from entrobench import record, tables
from entrobench.card import CardError, load_card
from entrobench.cells import expand


def test_cost_outside_slurm_has_cpu_seconds_and_no_request(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    sum(i * i for i in range(200_000))  # some CPU time to count
    cost = record.cost()
    assert cost["cpu_s"] > 0 and cost["node"] and cost["requested"] is None and cost["gpus"] == 2


@pytest.mark.parametrize("text, mb", [("500M", 500), ("2G", 2048), ("1T", 1024 * 1024), ("512K", 0), ("", None), ("n/a", None)])
def test_slurm_memory_units(text, mb):
    assert record._mem_mb(text) == mb


@pytest.mark.parametrize("cost, column, values", [("cpu_s", "cost (CPU-s per cell)", ("12.00 ± 25.41", "3.00 ± 0.00")), ("gpu_h", "cost (GPU-h per cell)", ("1.50 ± 6.35", "0.00 ± 0.00"))])
def test_table_cost_column(write_card, tmp_path, cost, column, values):
    card = load_card(write_card({"table": {"metric": "error_pct", "cost": cost}, "scales": {"tiny": {"seeds": [0, 1]}}}))
    usage = {("source", 0): (10.0, 1, 3600.0), ("source", 1): (14.0, 1, 7200.0), ("tent", 0): (3.0, 0, 60.0), ("tent", 1): (3.0, 0, 60.0)}
    for cell in expand(card.scale("tiny")):
        base = {"dataset": cell.dataset, "setting": cell.setting, "seed": cell.seed, "metrics": {"error_pct": 1.0, "error_pct/gaussian_noise": 1.0, "error_pct/contrast": 1.0}}
        if cell.method == "eta":  # a cell that did not run has no cost, and its row says why
            record.write(cell.record_path(tmp_path / "results"), {**base, "status": record.SKIPPED, "reason": "no GPU", "metrics": {}})
            continue
        cpu_s, gpus, wall_s = usage[(cell.method, cell.seed)]
        record.write(cell.record_path(tmp_path / "results"), {**base, "status": record.OK, "wall_s": wall_s, "cost": {"cpu_s": cpu_s, "gpus": gpus, "node": "n1", "requested": None}})
    md = tables.render(card, "tiny", tmp_path / "results", tmp_path / "out")["md"].read_text()
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|") and "mean" in line)
    assert lines[start].rstrip(" |").endswith(column)
    body = lines[start + 2 : lines.index("", start)]
    rows = {line.split("|")[1].strip(): line.rstrip(" |").rsplit("|", 1)[1].strip() for line in body}
    assert (rows["source"], rows["tent"], rows["eta"]) == (*values, "skipped")


def test_unknown_cost_is_a_card_error(write_card):
    with pytest.raises(CardError, match=r"table.*cost must be one of"):
        load_card(write_card({"table": {"metric": "error_pct", "cost": "dollars"}}))
