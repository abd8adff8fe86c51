"""Tables from hand-written records: the two layouts, the CI, and a row whose cells were skipped."""
from __future__ import annotations

from entrobench import record, tables
from entrobench.card import load_card
from entrobench.cells import expand


def _write_records(card, results, values):
    """values[(method, seed)] -> metrics dict, or a string: the reason the cell was skipped."""
    for cell in expand(card.scale("tiny")):
        got = values[(cell.method, cell.seed)]
        base = {"dataset": cell.dataset, "setting": cell.setting, "seed": cell.seed}
        if isinstance(got, str):
            record.write(cell.record_path(results), {**base, "status": record.SKIPPED, "reason": got, "metrics": {}})
        else:
            record.write(cell.record_path(results), {**base, "status": record.OK, "metrics": got})


def test_metrics_layout_puts_one_metric_per_column(write_card, tmp_path):
    path = write_card(
        {
            "table": {"metric": "error_pct", "extra_metrics": ["backward_per_1k"], "layout": "metrics"},
            "scales": {"tiny": {"datasets": ["digits_c"], "seeds": [0, 1]}},
        }
    )
    card = load_card(path)
    values = {
        ("source", 0): {"error_pct": 50.0, "backward_per_1k": 0.0},
        ("source", 1): {"error_pct": 52.0, "backward_per_1k": 0.0},
        ("tent", 0): {"error_pct": 40.0, "backward_per_1k": 1000.0},
        ("tent", 1): {"error_pct": 40.0, "backward_per_1k": 1000.0},
        ("eta", 0): "no GPU here",
        ("eta", 1): "no GPU here",
    }
    _write_records(card, tmp_path / "results", values)
    paths = tables.render(card, "tiny", tmp_path / "results", tmp_path / "out")
    md = paths["md"].read_text()

    header = next(line for line in md.splitlines() if line.startswith("|") and "error_pct (%)" in line)
    assert "backward_per_1k (per 1k samples)" in header and "mean" not in header
    source_row = next(line for line in md.splitlines() if line.startswith("| source"))
    # mean 51, Student t 95% half-width over two seeds: 12.706 * 1.414 / sqrt(2) = 12.71
    assert "51.00 ± 12.71" in source_row and "0.00 ± 0.00" in source_row
    assert "skipped" in next(line for line in md.splitlines() if line.startswith("| eta"))
    assert "no GPU here" in md  # the reason is in the table, not only in the record
    assert "| tent.error_pct < source.error_pct` |" not in md and "**holds**" in md

    csv = paths["csv"].read_text().splitlines()
    assert csv[0].startswith("method,error_pct_mean,error_pct_ci95,error_pct_n,backward_per_1k_mean")


def test_domains_layout_has_one_column_per_domain_and_their_mean(write_card, tmp_path):
    path = write_card({"scales": {"tiny": {"datasets": ["digits_c"], "seeds": [0], "protocol": {"corruptions": ["gaussian_noise", "fog"]}}}})
    card = load_card(path)
    per_method = {"source": 50.0, "tent": 30.0, "eta": 31.0}
    values = {
        (m, 0): {"error_pct": v, "error_pct/gaussian_noise": v + 10, "error_pct/fog": v - 10} for m, v in per_method.items()
    }
    _write_records(card, tmp_path / "results", values)
    md = tables.render(card, "tiny", tmp_path / "results", tmp_path / "out")["md"].read_text()
    header = next(line for line in md.splitlines() if line.startswith("|") and "gaussian_noise" in line)
    assert [c.strip() for c in header.strip("|").split("|")][1:] == ["gaussian_noise", "fog", "mean"]
    assert "| Tent" not in md and "| tent " in md  # rows print the label, which defaults to the name
    tent_row = next(line for line in md.splitlines() if line.startswith("| tent "))
    assert [c.strip() for c in tent_row.strip("|").split("|")][1:] == ["40.00", "20.00", "30.00"]


def test_pivot_shows_metrics_across_settings_and_claims_can_pin_a_setting(write_card, tmp_path):
    path = write_card(
        {
            "settings": [{"name": "bs64", "batch_size": 64}, {"name": "bs16", "batch_size": 16}],
            "table": {"metric": "error_pct", "layout": "metrics", "pivot": ["error_pct"]},
            "scales": {"tiny": {"datasets": ["digits_c"], "seeds": [0, 1]}},
            "claims": [{"text": "tent.error_pct@bs16 - tent.error_pct@bs64 < source.error_pct@bs16 - source.error_pct@bs64", "setting": "bs16"}],
        }
    )
    card = load_card(path)
    for cell in expand(card.scale("tiny")):
        error = {"source": 50.0, "tent": 40.0, "eta": 45.0}[cell.method] + (cell.setting == "bs16") * {"source": 10.0, "tent": 2.0, "eta": 5.0}[cell.method]
        base = {"dataset": cell.dataset, "setting": cell.setting, "seed": cell.seed}
        record.write(cell.record_path(tmp_path / "results"), {**base, "status": record.OK, "metrics": {"error_pct": error + cell.seed}})
    md = tables.render(card, "tiny", tmp_path / "results", tmp_path / "out")["md"].read_text()

    assert "## digits_c · all settings" in md
    header = next(line for line in md.splitlines() if "bs64 · error_pct" in line)
    assert "bs16 · error_pct" in header
    tent_row = next(line for line in md.splitlines() if line.startswith("| tent") and "40.50" in line and "42.50" in line)
    assert tent_row
    claim_line = next(line for line in md.splitlines() if "tent.error_pct@bs16" in line)
    assert "**holds**" in claim_line and "holds on 2 of 2 seeds" in claim_line and "digits_c · bs16" in claim_line


def test_counted_metrics_show_whole_numbers_only_where_they_are_whole(write_card, tmp_path):
    """`resets` counts recoveries: 3 on both seeds reads "3 ± 0", not "3.00 ± 0.00"; a mean of 2.5
    keeps its decimals, and a measured metric (error, %) keeps them even when it is whole."""
    path = write_card(
        {
            "table": {"metric": "error_pct", "extra_metrics": ["resets"], "layout": "metrics"},
            "scales": {"tiny": {"datasets": ["digits_c"], "seeds": [0, 1]}},
        }
    )
    card = load_card(path)
    values = {
        ("source", 0): {"error_pct": 50.0, "resets": 3.0},
        ("source", 1): {"error_pct": 50.0, "resets": 3.0},
        ("tent", 0): {"error_pct": 40.0, "resets": 2.0},
        ("tent", 1): {"error_pct": 41.0, "resets": 3.0},
        ("eta", 0): {"error_pct": 40.0, "resets": 0.0},
        ("eta", 1): {"error_pct": 40.0, "resets": 0.0},
    }
    _write_records(card, tmp_path / "results", values)
    md = tables.render(card, "tiny", tmp_path / "results", tmp_path / "out")["md"].read_text()
    row = {method: next(line for line in md.splitlines() if line.startswith(f"| {method} ")) for method in ("source", "tent", "eta")}
    assert "| 3 ± 0 " in row["source"] and "50.00 ± 0.00" in row["source"]
    assert "2.50 ± 6.35" in row["tent"]
    assert "| 0 ± 0 " in row["eta"]
