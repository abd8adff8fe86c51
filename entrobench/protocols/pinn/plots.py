"""PINN figures: per cell, the field (reference, prediction, absolute error over (t, x)); per card,
from its records, the relative L2 error of every method across settings and the training curves
(loss, and causal training's min weight, against optimizer steps)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from entrobench import record


def field_figure(x: np.ndarray, t: np.ndarray, u_ref: np.ndarray, u: np.ndarray, title: str, path: Path,
                 names: tuple[str, str] = ("reference", "prediction"), log_error: bool = False) -> Path:
    """Three panels over (t, x): reference, prediction, |prediction - reference| (log scale where
    the difference spans decades). Drawn in every cell's process: matplotlib alone, not
    entrobench.plots (which brings pandas and scipy.stats)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4), sharey=True)
    low, high = float(min(u_ref.min(), u.min())), float(max(u_ref.max(), u.max()))
    error = np.abs(u - u_ref)
    norm = LogNorm(max(error.max() * 1e-6, 1e-16), max(error.max(), 1e-15)) if log_error else None
    panels = [(names[0], u_ref, "RdBu_r", {"vmin": low, "vmax": high}), (names[1], u, "RdBu_r", {"vmin": low, "vmax": high}),
              ("absolute difference" if log_error else "absolute error", np.maximum(error, 1e-300) if log_error else error, "magma", {"norm": norm} if log_error else {})]
    for ax, (name, values, cmap, scale) in zip(axes, panels):
        image = ax.pcolormesh(t, x, values.T, cmap=cmap, shading="auto", rasterized=True, **scale)
        fig.colorbar(image, ax=ax)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("t")
    axes[0].set_ylabel("x")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)  # entrobench.plots.save's size and resolution
    plt.close(fig)
    return path


def draw(card, scale: str, records: list[dict], out_dir: Path) -> list[Path]:
    # pandas and scipy.stats: imported for a card's plots only, not in every cell's process
    from entrobench import aggregate

    scaled = card.scale(scale)
    summary = aggregate.summarize(aggregate.frame(records))
    ok = [r for r in records if r["status"] == record.OK]
    written = []
    for dataset in scaled.datasets:
        written.append(_errors(card, scaled, summary, dataset, out_dir / f"{dataset}-rel_l2.png"))
        for setting in scaled.settings:
            here = [r for r in ok if r["dataset"] == dataset and r["setting"] == setting.name]
            written.append(_curves(card, scaled, here, f"{card.id}: {dataset} · {setting.name}", out_dir / f"{dataset}-{setting.name}-curves.png"))
    return written


def _errors(card, scaled, summary, dataset: str, path: Path) -> Path:
    """rel_l2 per method (bars) per setting (groups), mean and 95% CI over seeds, log scale."""
    from entrobench.plots import plt, save

    here = summary[(summary["dataset"] == dataset) & (summary["metric"] == "rel_l2")].set_index(["method", "setting"])
    settings = [s.name for s in scaled.settings]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(settings) * len(scaled.methods) / 3 + 2), 3.6))
    width = 0.8 / len(scaled.methods)
    for i, entry in enumerate(scaled.methods):
        keys = [(entry.name, s) for s in settings]
        means = np.array([here.loc[k, "mean"] if k in here.index else np.nan for k in keys])
        cis = np.nan_to_num([here.loc[k, "ci95"] if k in here.index else np.nan for k in keys])
        ax.bar(np.arange(len(settings)) + (i - (len(scaled.methods) - 1) / 2) * width, means, width,
               yerr=np.minimum(cis, 0.95 * np.nan_to_num(means)), capsize=2, label=entry.label or entry.name)
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(settings)), settings)
    ax.set_ylabel("relative L2 error")
    ax.set_title(f"{card.id}: {dataset} (mean ± 95% CI over seeds; missing bar: skipped)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return save(fig, path)


def _curves(card, scaled, records: list[dict], title: str, path: Path) -> Path:
    """Total loss per method (one line per seed) and causal training's min weight, against steps."""
    from entrobench.plots import plt, save

    fig, (loss_ax, weight_ax) = plt.subplots(1, 2, figsize=(11, 3.4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, entry in enumerate(scaled.methods):
        runs = [r["curves"] for r in records if r["method"] == entry.name and r["curves"].get("iteration")]
        for k, curves in enumerate(runs):
            label = (entry.label or entry.name) if k == 0 else None
            loss_ax.plot(curves["iteration"], curves["loss"], color=colors[i % len(colors)], lw=0.8, label=label)
            if "min_causal_weight" in curves:
                weight_ax.plot(curves["iteration"], curves["min_causal_weight"], color=colors[i % len(colors)], lw=0.8, label=label)
    loss_ax.set_yscale("log")
    loss_ax.set_xlabel("optimizer step")
    loss_ax.set_ylabel("training loss")
    loss_ax.legend(fontsize=7)
    weight_ax.set_xlabel("optimizer step")
    weight_ax.set_ylabel("causal training: min_i w_i")
    weight_ax.set_ylim(-0.02, 1.02)
    if not weight_ax.lines:
        weight_ax.text(0.5, 0.5, "no causal row at this scale", ha="center", va="center", transform=weight_ax.transAxes)
    fig.suptitle(title, fontsize=9)
    return save(fig, path)
