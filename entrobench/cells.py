"""Cells: one run of one method on one dataset, setting and seed, at one scale.

A card sees a cell by its place (dataset / setting / row / seed); the cell's record lives at a
path named by its content: the method and the hash of `cell_config` without the seed. So two
cards that run the same method with the same parameters on the same protocol share one record
(one computation), and changing a method parameter gives new paths for exactly the cells that
use it, which is what makes the DAG rerun them and nothing else.
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
    method_registry: str = ""  # e.g. "tta/eata"
    digest: str = ""  # content hash of the cell's config without its seed

    @property
    def key(self) -> str:
        """The card's name for the cell, as the CLI takes it."""
        return f"{self.dataset}/{self.setting}/{self.method}/seed{self.seed}"

    @property
    def run_name(self) -> str:
        """The content's name: `tta.eata-<digest>`, shared by every card that agrees on it."""
        return f"{self.method_registry.replace('/', '.')}-{self.digest}"

    def record_path(self, results: Path | str = "results") -> Path:
        return Path(results) / "cells" / self.scale / self.dataset / self.setting / self.run_name / f"seed{self.seed}.json"

    @classmethod
    def from_key(cls, card: str, scale: str, key: str) -> "Cell":
        dataset, setting, method, seed = key.split("/")
        return cls(card, scale, dataset, setting, method, int(seed.removeprefix("seed")))


def expand(scaled: ScaledCard) -> list[Cell]:
    """method x dataset x setting x seed, in the card's order."""
    card = scaled.card
    cells = []
    for dataset in scaled.datasets:
        for setting in scaled.settings:
            for method in card.spec.methods:
                probe = Cell(card.id, scaled.scale, dataset, setting.name, method.name, 0)
                config = cell_config(scaled, probe)
                cells += [dataclasses.replace(probe, seed=seed, method_registry=config["method"], digest=digest(config)) for seed in scaled.seeds]
    return cells


def digest(config: dict) -> str:
    """The content hash of a cell's config without its seed: the seeds of one run share it."""
    return content_hash({k: v for k, v in config.items() if k != "seed"})


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
