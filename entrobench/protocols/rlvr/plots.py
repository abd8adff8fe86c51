"""RLVR plots from records: entropy and reward against step per method, and entropy against
reward per method with the fitted law R = -a exp(H) + b; where the protocol names benchmarks, the
paper's Table 2 layout (rows = methods, columns = benchmarks and Avg., ours beside the paper's)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from entrobench import record
from entrobench.card import Card
from entrobench.plots import plt, save
from entrobench.protocols.rlvr.law import fit_law, moving_average

STEP_CURVES = (("entropy", "policy entropy (nats/token)"), ("reward", "rollout reward"), ("accuracy", "held-out greedy accuracy"))


def draw(card: Card, scale: str, records: list[dict], out_dir: Path) -> list[Path]:
    scaled = card.scale(scale)
    smooth = scaled.protocol.smooth
    written = []
    for dataset in scaled.datasets:
        for setting in scaled.settings:
            here = [r for r in records if r["dataset"] == dataset and r["setting"] == setting.name and r["status"] == record.OK]
            name, title = f"{dataset}-{setting.name}", f"{card.id}: {dataset} · {setting.name}"
            written.append(_curves(card, here, smooth, title, out_dir / f"{name}-curves.png"))
            written.append(_law(card, here, smooth, title, out_dir / f"{name}-entropy-reward.png"))
            if scaled.protocol.benchmarks:
                written.append(table2(card, scale, here, scaled.protocol.benchmarks, out_dir / f"{name}-table2.md"))
    return written


def table2(card: Card, scale: str, records: list[dict], benchmarks: list[str], path: Path) -> Path:
    """Table 2's layout in Markdown, in %: each cell ours (mean ± 95% CI over seeds) and, where the
    card reports it, the paper's number in parentheses. Columns follow the protocol's benchmarks."""
    from entrobench.aggregate import frame, summarize
    from entrobench.protocols.rlvr.benchmarks import BENCHMARKS

    summary = summarize(frame(records)).set_index(["method", "metric"]) if records else None
    metrics = [(f"acc_{b}", BENCHMARKS[b].column) for b in benchmarks] + [("avg_acc", "Avg.")]
    paper = {(r.method, r.metric): r.value for r in card.spec.reported}
    lines = [f"# {card.id} ({scale}): Table 2 layout, accuracy in %", "",
             "Ours: mean ± 95% CI over seeds (n); the paper's number in parentheses. AIME and AMC avg@32 at T 0.6, the others greedy.", "",
             "| method | " + " | ".join(column for _, column in metrics) + " |", "| --- |" + " --- |" * len(metrics)]
    for entry in card.scale(scale).methods:
        cells = []
        for metric, _ in metrics:
            ours = "n/a"
            if summary is not None and (entry.name, metric) in summary.index:
                row = summary.loc[(entry.name, metric)]
                ci = f" ± {100 * row['ci95']:.1f}" if row["ci95"] == row["ci95"] else ""
                ours = f"{100 * row['mean']:.1f}{ci} (n={int(row['n'])})"
            theirs = f" ({100 * paper[(entry.name, metric)]:.1f})" if (entry.name, metric) in paper else ""
            cells.append(ours + theirs)
        lines.append(f"| {entry.label or entry.name} | " + " | ".join(cells) + " |")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _runs(card: Card, records: list[dict], curve: str):
    """(label, per-seed curves cut to a common length) for each method with data."""
    for entry in card.spec.methods:
        runs = [r["curves"][curve] for r in records if r["method"] == entry.name and r["curves"].get(curve)]
        if runs:
            length = min(map(len, runs))
            yield entry.label or entry.name, np.array([run[:length] for run in runs], dtype=float)


def _curves(card: Card, records: list[dict], smooth: int, title: str, path: Path) -> Path:
    """Per-step curves, mean over seeds, smoothed with the protocol's moving average."""
    fig, axes = plt.subplots(1, len(STEP_CURVES), figsize=(13, 3.6))
    for ax, (curve, ylabel) in zip(axes, STEP_CURVES):
        measured = [(label, runs) for label, runs in _runs(card, records, curve) if np.isfinite(runs).any()]
        for label, runs in measured:
            mean = moving_average(np.nanmean(runs, axis=0), smooth)
            ax.plot(np.arange(len(mean)) + min(smooth, runs.shape[1]) - 1, mean, label=label, lw=1)
        if not measured:  # e.g. the per-step greedy accuracy with curve_eval_prompts 0
            ax.text(0.5, 0.5, "not measured at this scale", ha="center", va="center", transform=ax.transAxes, color="0.4")
            ax.set_xticks([]), ax.set_yticks([])
        ax.set_xlabel(f"GRPO step ({smooth}-step moving average, mean over seeds)")
        ax.set_ylabel(ylabel)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    return save(fig, path)


def _law(card: Card, records: list[dict], smooth: int, title: str, path: Path) -> Path:
    """Smoothed per-step (H, R) of every seed, and the law fitted on all of a method's seeds."""
    methods = [m for m in card.spec.methods if any(r["method"] == m.name for r in records)]
    cols = max(1, min(3, len(methods)))
    rows = max(1, -(-len(methods) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, entry in zip(axes.flat, methods):
        hs, rs = [], []
        for rec in (r for r in records if r["method"] == entry.name):
            h, rew = moving_average(rec["curves"]["entropy"], smooth), moving_average(rec["curves"]["reward"], smooth)
            ax.plot(h, rew, ".", ms=2, alpha=0.5, label=f"seed {rec['seed']}")
            hs.append(h)
            rs.append(rew)
        fit = fit_law(np.concatenate(hs), np.concatenate(rs))
        grid = np.linspace(0, max(float(np.concatenate(hs).max()), 1e-3), 100)
        ax.plot(grid, -fit.a * np.exp(grid) + fit.b, "k-", lw=1,
                label=f"R = -a e^H + b: a {fit.a:.2f}, b {fit.b:.2f}, R² {fit.r2:.2f}, ceiling -a+b {fit.ceiling:.2f}")
        ax.set_title(entry.label or entry.name, fontsize=9)
        ax.set_xlabel("entropy H (nats/token)")
        ax.set_ylabel("rollout reward R")
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(methods):]:
        ax.axis("off")
    fig.suptitle(f"{title}: entropy vs reward, {smooth}-step moving averages, law fitted on all seeds", fontsize=9)
    return save(fig, path)
