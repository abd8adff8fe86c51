"""TTA plots from records: error per domain per method, and entropy and collapse over the stream."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from entrobench import aggregate, record
from entrobench.card import Card
from entrobench.plots import plt, save

STREAM_CURVES = (("entropy_mean", "prediction entropy (nats)"), ("majority_frac", f"majority-class share, last {64} predictions"))


def draw(card: Card, scale: str, records: list[dict], out_dir: Path) -> list[Path]:
    summary = aggregate.summarize(aggregate.frame(records))
    scaled = card.scale(scale)
    cols = card.family.columns(scaled.protocol)
    written = []
    for dataset in scaled.datasets:
        for setting in scaled.settings:
            name = f"{dataset}-{setting.name}"
            written.append(_per_domain(card, summary, dataset, setting.name, cols, out_dir / f"{name}-per-domain.png"))
            here = [r for r in records if r["dataset"] == dataset and r["setting"] == setting.name and r["status"] == record.OK]
            written.append(_stream(card, here, cols, f"{card.id}: {dataset} · {setting.name}", out_dir / f"{name}-stream.png"))
    return written


def _per_domain(card: Card, summary, dataset: str, setting: str, cols: list[str], path: Path) -> Path:
    metric = card.spec.table.metric
    here = summary[(summary["dataset"] == dataset) & (summary["setting"] == setting)].set_index(["method", "metric"])
    methods = card.spec.methods
    fig, ax = plt.subplots(figsize=(max(7, 0.9 * len(cols) * len(methods) / 3 + 1.5), 3.6))
    width = 0.8 / len(methods)
    x = np.arange(len(cols) + 1)
    for i, entry in enumerate(methods):
        keys = [(entry.name, f"{metric}/{c}") for c in cols] + [(entry.name, metric)]
        means = [here.loc[k, "mean"] if k in here.index else np.nan for k in keys]
        cis = [here.loc[k, "ci95"] if k in here.index else np.nan for k in keys]
        ax.bar(x + (i - (len(methods) - 1) / 2) * width, means, width, yerr=np.nan_to_num(cis), label=entry.label or entry.name, capsize=1.5)
    ax.set_xticks(x, [c.replace("_", "\n") for c in cols] + ["mean"], fontsize=7)
    unit = card.metric(metric).unit
    ax.set_ylabel(f"{metric} ({unit})")
    ax.set_title(f"{card.id}: {dataset} · {setting} (mean ± 95% CI over seeds)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside: bars reach the top
    return save(fig, path)


def _stream(card: Card, records: list[dict], cols: list[str], title: str, path: Path) -> Path:
    """Per-batch curves averaged over seeds; vertical lines mark where a new domain starts."""
    fig, axes = plt.subplots(1, len(STREAM_CURVES), figsize=(11, 3.4))
    for ax, (curve, ylabel) in zip(axes, STREAM_CURVES):
        per_domain = None
        for entry in card.spec.methods:
            runs = [r["curves"][curve] for r in records if r["method"] == entry.name and r["curves"].get(curve)]
            if not runs:
                continue
            length = min(map(len, runs))
            ax.plot(np.mean([r[:length] for r in runs], axis=0), label=entry.label or entry.name, lw=0.9)
            per_domain = length / len(cols)
        if per_domain:
            for d in range(1, len(cols)):
                ax.axvline(d * per_domain, color="grey", lw=0.4, ls=":")
        ax.set_xlabel(f"batch in stream ({', '.join(cols)})" if len(cols) <= 4 else f"batch in stream ({len(cols)} domains)")
        ax.set_ylabel(ylabel)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    return save(fig, path)
