"""Records -> DataFrames: one row per (cell, metric), then mean and 95% CI over seeds."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from entrobench import record
from entrobench.card import Card
from entrobench.cells import expand

KEYS = ["dataset", "setting", "method"]


def load_records(card: Card, scale: str, results: Path) -> list[dict]:
    """Every cell of the card at this scale, seen through the card (its row name and label).
    Records are shared between cards, so the card's view is added here, not stored in them;
    a cell without a record reads as status 'missing'."""
    out = []
    for cell in expand(card.scale(scale)):
        path = cell.record_path(results)
        entry = card.method(cell.method)
        view = {"card": card.id, "cell": cell.key, "method": cell.method, "method_label": entry.label or cell.method, "path": str(path),
                "setting": cell.setting, "seed": cell.seed}  # a shared record's own place is another cell's
        try:
            out.append({**record.read(path), **view})
            continue
        except FileNotFoundError:
            failed = record.failure(path)
            status, reason = (record.FAILED, failed) if failed else ("missing", f"no record at {path}")
        except record.CorruptRecord as err:  # set aside by record.read: the next run rebuilds it
            status, reason = "missing", str(err)
        out.append({"dataset": cell.dataset, "setting": cell.setting, "seed": cell.seed, "status": status, "reason": reason, "metrics": {}, **view})
    return out


def frame(records: list[dict]) -> pd.DataFrame:
    """Long format: dataset, setting, method, seed, status, reason, metric, value."""
    rows = []
    for rec in records:
        base = {k: rec[k] for k in (*KEYS, "seed", "status")} | {"reason": rec.get("reason", "")}
        if not rec["metrics"]:
            rows.append({**base, "metric": None, "value": np.nan})
        rows.extend({**base, "metric": name, "value": float(value)} for name, value in rec["metrics"].items())
    return pd.DataFrame(rows, columns=[*KEYS, "seed", "status", "reason", "metric", "value"])


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, 95% CI half-width (Student t) and seed count per (dataset, setting, method, metric)."""
    ok = df[(df["status"] == record.OK) & df["metric"].notna()]
    grouped = ok.groupby([*KEYS, "metric"], sort=False)["value"]
    out = grouped.agg(mean="mean", n="count", ci95=ci95).reset_index()
    return out


def ci95(values) -> float:
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n < 2:
        return math.nan
    return float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n))


def statuses(df: pd.DataFrame) -> pd.DataFrame:
    """One row per cell that did not finish ok: what happened and why."""
    cells = df.drop_duplicates([*KEYS, "seed"])
    return cells[cells["status"] != record.OK][[*KEYS, "seed", "status", "reason"]]
