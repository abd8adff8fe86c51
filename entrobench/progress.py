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
