"""What a metric means: its unit and which direction is better."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    unit: str
    direction: str  # "lower" or "higher" is better; "" for a descriptive number (a fitted constant)
    description: str = ""
    # True where NaN is an answer, not a failure (a threshold never crossed, a fit that cannot be
    # made); a record with NaN in any other metric, or inf in any, is a failed cell
    may_be_undefined: bool = False

    @property
    def reading(self) -> str:
        return f"{self.direction} is better" if self.direction else "descriptive"
