"""Cells: one run of one method on one dataset, setting and seed, at one scale.

A cell's identity is its place in the card; its content is `cell_config`, whose hash goes into
the record and into the DAG's params, so that changing a method parameter reruns exactly the
cells that use that method entry.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from entrobench.card import ScaledCard
from entrobench.hashing import content_hash


@dataclass(frozen=True)
class Cell:
    card: str
    scale: str
    dataset: str
    setting: str
    method: str  # the card's row name
    seed: int

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.setting}/{self.method}/seed{self.seed}"

    def record_path(self, results: Path | str = "results") -> Path:
        return Path(results) / self.card / self.scale / "cells" / f"{self.key}.json"

    @classmethod
    def from_key(cls, card: str, scale: str, key: str) -> "Cell":
        dataset, setting, method, seed = key.split("/")
        return cls(card, scale, dataset, setting, method, int(seed.removeprefix("seed")))


def expand(scaled: ScaledCard) -> list[Cell]:
    """method x dataset x setting x seed, in the card's order."""
    card = scaled.card
    return [
        Cell(card.id, scaled.scale, dataset, setting.name, method.name, seed)
        for dataset in scaled.datasets
        for setting in scaled.settings
        for method in card.spec.methods
        for seed in scaled.seeds
    ]


def cell_config(scaled: ScaledCard, cell: Cell) -> dict:
    """Everything that determines a cell's result (besides code and data)."""
    card = scaled.card
    registry_name, params = scaled.method_params(cell.method)
    return {
        "card_version": card.spec.version,
        "family": card.spec.family,
        "method": registry_name,
        "params": dataclasses.asdict(params),
        "dataset": cell.dataset,
        "setting": dataclasses.asdict(scaled.setting(cell.setting)),
        "protocol": dataclasses.asdict(scaled.protocol),
        "seed": cell.seed,
    }


def config_hash(scaled: ScaledCard, cell: Cell) -> str:
    return content_hash(cell_config(scaled, cell))
