"""A card's plots: each family draws its own (`Family.draw(card, scale, records, out_dir)`,
which returns the files it wrote), from the records only."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on cluster nodes or CI
import matplotlib.pyplot as plt  # noqa: E402,F401  (families import it from here, after the backend is set)

from entrobench.card import Card  # noqa: E402


def save(fig, path: Path) -> Path:
    """Lay out, write and close a figure (every family's plots share one size and resolution)."""
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def render(card: Card, scale: str, results: Path, out_dir: Path) -> list[Path]:
    from entrobench import aggregate  # pandas and scipy: paid by the plot rule, not by every cell that draws a figure

    out_dir.mkdir(parents=True, exist_ok=True)
    return card.family.draw(card, scale, aggregate.load_records(card, scale, results), out_dir)
