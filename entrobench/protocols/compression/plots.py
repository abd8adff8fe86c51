"""Compression plots from records only: accuracy against sparsity per pruning method, and
reliability diagrams (accuracy against confidence) per distillation method."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from entrobench import record
from entrobench.plots import plt, save

PANEL_COLUMNS = 5


def draw(card, scale: str, records: list[dict], out_dir: Path) -> list[Path]:
    ok = [r for r in records if r.get("status") == record.OK]
    written = []
    for dataset in sorted({r["dataset"] for r in ok}):
        here = [r for r in ok if r["dataset"] == dataset]
        pruned = [r for r in here if "dense_top1_pct" in r["metrics"]]
        distilled = [r for r in here if r.get("reliability")]
        if pruned:
            written.append(accuracy_vs_sparsity(card, pruned, f"{card.id}: {dataset} ({scale})", out_dir / f"{dataset}-accuracy-vs-sparsity.png"))
        if distilled:
            written.append(reliability_diagrams(card, distilled, f"{card.id}: {dataset} ({scale})", out_dir / f"{dataset}-reliability.png"))
    return written


def _rows(card, records: list[dict]) -> list[tuple[str, str, list[dict]]]:
    """(row name, label, its records) in the card's order, rows without records left out."""
    out = []
    for entry in card.spec.methods:
        mine = [r for r in records if r["method"] == entry.name]
        if mine:
            out.append((entry.name, entry.label or entry.name, mine))
    return out


def accuracy_vs_sparsity(card, records: list[dict], title: str, path: Path) -> Path:
    """Mean +- 95% CI of test top-1 at each sparsity reached; the dense network at 0%."""
    from entrobench.aggregate import ci95

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for _, label, mine in _rows(card, records):
        dense = [r["metrics"]["dense_top1_pct"] for r in mine]
        levels = sorted({int(k.rsplit("_s", 1)[1]) for r in mine for k in r["metrics"] if k.startswith("top1_pct_s")})
        xs, means, cis = [0], [np.mean(dense)], [ci95(dense)]
        for level in levels:
            values = [r["metrics"][f"top1_pct_s{level}"] for r in mine if f"top1_pct_s{level}" in r["metrics"]]
            xs.append(level)
            means.append(np.mean(values))
            cis.append(ci95(values))
        ax.errorbar(xs, means, yerr=np.nan_to_num(cis), marker="o", capsize=3, label=label)
    low, high = ax.get_ylim()
    ax.set_ylim(max(low, 0.0), min(high, 100.0))  # a wide CI over few seeds must not leave [0, 100]
    ax.set_xlabel("sparsity of the prunable weights (%)")
    ax.set_ylabel("test top-1 (%)")
    ax.set_title(f"{title}: mean ± 95% CI over seeds", fontsize=9)
    ax.legend(fontsize=8)
    return save(fig, path)


def reliability_diagrams(card, records: list[dict], title: str, path: Path) -> Path:
    """One panel per method: accuracy per confidence bin pooled over seeds (bars), the diagonal of
    perfect calibration, and the method's mean ECE."""
    rows = _rows(card, records)
    n_cols = min(PANEL_COLUMNS, len(rows))
    n_rows = -(-len(rows) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.4 * n_cols, 2.5 * n_rows), squeeze=False)
    for ax, (_, label, mine) in zip(axes.flat, rows):
        count = np.sum([r["reliability"]["count"] for r in mine], axis=0)
        hits = np.sum([np.multiply(r["reliability"]["accuracy"], r["reliability"]["count"]) for r in mine], axis=0)
        bins = len(count)
        centres = (np.arange(bins) + 0.5) / bins
        accuracy = np.divide(hits, count, out=np.zeros(bins), where=count > 0)
        ax.bar(centres, accuracy, width=1.0 / bins, edgecolor="black", linewidth=0.3, alpha=0.8)
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        ece = np.mean([r["metrics"]["ece_pct"] for r in mine])
        ax.set_title(f"{label}\nECE {ece:.2f}%", fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.tick_params(labelsize=6)
    for ax in axes.flat[len(rows):]:
        ax.axis("off")
    fig.supxlabel("confidence (max softmax)", fontsize=8)
    fig.supylabel("accuracy in bin", fontsize=8)
    fig.suptitle(f"{title}: reliability, test images pooled over seeds", fontsize=9)
    return save(fig, path)
