"""One package per family of papers: spec (card schema, light imports), run (a cell), plots."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dataset:
    """A card's dataset name as a family knows it: whether it needs the data root, and what it is."""

    needs_data_root: bool
    description: str
