"""Leaderboards: every card that shares a benchmark, merged, ranked on each (dataset, setting).

Rows are method configurations: the same method with the same parameters in two cards is
one row (their records share a config hash), listed with both cards.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from entrobench import aggregate, record
from entrobench.card import Card
from entrobench.cells import digest


def render(benchmark: str, cards: list[Card], scale: str, results: Path, out: Path) -> Path:
    rows = []
    for card in cards:
        if scale not in card.spec.scales:
            continue
        metric = card.spec.table.metric
        for rec in aggregate.load_records(card, scale, results):
            if rec["status"] == record.OK and metric in rec["metrics"]:
                rows.append({
                    "dataset": rec["dataset"], "setting": rec["setting"], "method": rec["method_label"],
                    "config": digest(rec["config"])[:8], "card": card.id, "seed": rec["seed"], "metric": metric, "value": rec["metrics"][metric],
                })
    lines = [f"# Leaderboard: {benchmark} ({scale} scale)", "", f"Cards: {', '.join(c.id for c in cards)}. Mean ± 95% CI over seeds; "
             "rows with the same config hash are the same runs, shared by the cards listed.", ""]
    if not rows:
        lines.append("No finished cells yet.")
    else:
        df = pd.DataFrame(rows)
        direction = {c.spec.table.metric: c.metric(c.spec.table.metric).direction for c in cards}
        for (dataset, setting, metric), block in df.groupby(["dataset", "setting", "metric"], sort=False):
            seeds = block.drop_duplicates(["config", "seed"])
            board = seeds.groupby(["method", "config"]).agg(mean=("value", "mean"), ci95=("value", aggregate.ci95), seeds=("seed", "nunique")).reset_index()
            board["cards"] = [", ".join(sorted(set(block[block["config"] == c]["card"]))) for c in board["config"]]
            board = board.sort_values("mean", ascending=direction[metric] == "lower").reset_index(drop=True)
            board.index = pd.RangeIndex(1, len(board) + 1, name="rank")
            board[metric] = [f"{m:.2f} ± {c:.2f}" if c == c else f"{m:.2f}" for m, c in zip(board["mean"], board["ci95"])]
            lines += [f"## {dataset} · {setting}", "", board[["method", metric, "seeds", "config", "cards"]].to_markdown(), ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    return out
