"""Decoding plots from records: accuracy and diversity against temperature, one line per sampler."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from entrobench import aggregate
from entrobench.card import Card
from entrobench.plots import plt, save

PANELS = (("acc_mean", "accuracy (mean of tasks)"), ("distinct_2", "distinct-2 (open-ended)"), ("coherence", "coherence (nats/token)"), ("token_entropy", "token entropy (nats)"))


def draw(card: Card, scale: str, records: list[dict], out_dir: Path) -> list[Path]:
    summary = aggregate.summarize(aggregate.frame(records))
    scaled = card.scale(scale)
    settings = sorted(scaled.settings, key=lambda s: s.temperature)
    written = []
    for dataset in scaled.datasets:
        here = summary[summary["dataset"] == dataset].set_index(["method", "setting", "metric"])
        fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.4))
        for ax, (metric, title) in zip(axes, PANELS):
            for entry in card.spec.methods:
                keys = [(entry.name, s.name, metric) for s in settings]
                means = np.array([here.loc[k, "mean"] if k in here.index else np.nan for k in keys])
                cis = np.array([here.loc[k, "ci95"] if k in here.index else np.nan for k in keys])
                cis = np.nan_to_num(cis)
                low, high = means - cis, means + cis
                if card.metric(metric).unit == "fraction":  # a t interval over 2 seeds can leave [0, 1]
                    low, high = np.clip(low, 0, 1), np.clip(high, 0, 1)
                ax.errorbar([s.temperature for s in settings], means, yerr=[means - low, high - means], marker="o", capsize=2, label=entry.label or entry.name)
            ax.set_xlabel("temperature")
            ax.set_title(title, fontsize=9)
        axes[0].legend(fontsize=7)
        fig.suptitle(f"{card.id} ({scale}): mean ± 95% CI over seeds (fractions clipped to [0, 1])", fontsize=9)
        written.append(save(fig, out_dir / f"{dataset}-vs-temperature.png"))
    return written
