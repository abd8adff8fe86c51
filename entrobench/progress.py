"""Progress lines for long work: at most one every few seconds, to stderr (Snakemake logs it)."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, label: str, every_s: float = 5.0, stream=sys.stderr):
        self.label, self.every_s, self.stream = label, every_s, stream
        self.start = self._last = time.monotonic()

    def update(self, done: int, total: int, detail: str = "") -> None:
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            print(f"[{self.label}] {done}/{total} {detail} ({now - self.start:.0f}s)", file=self.stream, flush=True)

    def done(self, detail: str = "") -> None:
        print(f"[{self.label}] done {detail} ({time.monotonic() - self.start:.1f}s)", file=self.stream, flush=True)


def card_line(card, scale: str, results) -> str:
    """Where a card's table stands, for a person watching a run: cells with a record out of all,
    and the CPU time the rest would take at the mean of those done (an estimate, marked so)."""
    import json
    from pathlib import Path

    from entrobench.cells import expand

    paths = {c.record_path(results) for c in expand(card.scale(scale))}
    walls = []
    for path in paths:
        try:
            walls.append(float(json.loads(Path(path).read_text()).get("wall_s", 0.0)))
        except (OSError, ValueError):
            continue
    left = len(paths) - len(walls)
    seconds = left * sum(walls) / len(walls) if walls else 0.0
    estimate = (f", ~{seconds / 60:.0f} CPU-min of cells left" if seconds >= 60 else f", ~{seconds:.0f} CPU-s of cells left") if walls and left else ""
    return f"[{card.id} {scale}] {len(walls)}/{len(paths)} cells done{estimate}"
