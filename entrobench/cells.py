"""Cells: one run of one method on one dataset, setting and seed, at one scale.

A card sees a cell by its place (dataset / setting / row / seed); the cell's record lives at a
path named by its content: the method and the hash of `cell_config` without the seed. So two
cards that run the same method with the same parameters on the same protocol share one record
(one computation), and changing a method parameter gives new paths for exactly the cells that
use it, which is what makes the DAG rerun them and nothing else.

A method may declare what its result cannot depend on (`INVARIANT_TO`, e.g. greedy decoding:
`("setting.temperature", "seed")`). Its cells that differ only there read one record: the first
such cell runs, and its place is where that record lives for all of them.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from entrobench import method_facts
from entrobench.card import ScaledCard
from entrobench.family import Build
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
    # where the record lives when another cell's run stands for this one (see INVARIANT_TO)
    record_setting: str = ""
    record_seed: int | None = None

    @property
    def key(self) -> str:
        """The card's name for the cell, as the CLI takes it."""
        return f"{self.dataset}/{self.setting}/{self.method}/seed{self.seed}"

    @property
    def run_name(self) -> str:
        """The content's name: `tta.eata-<digest>`, shared by every card that agrees on it."""
        return f"{self.method_registry.replace('/', '.')}-{self.digest}"

    @property
    def shared(self) -> bool:
        """True when this cell reads the record of another cell's run."""
        return bool(self.record_setting) or self.record_seed is not None

    def record_path(self, results: Path | str = "results") -> Path:
        setting = self.record_setting or self.setting
        seed = self.seed if self.record_seed is None else self.record_seed
        return Path(results) / "cells" / self.scale / self.dataset / setting / self.run_name / f"seed{seed}.json"

    @classmethod
    def from_key(cls, card: str, scale: str, key: str) -> "Cell":
        dataset, setting, method, seed = key.split("/")
        return cls(card, scale, dataset, setting, method, int(seed.removeprefix("seed")))


def expand(scaled: ScaledCard) -> list[Cell]:
    """method x dataset x setting x seed, in the card's order."""
    card = scaled.card
    cells, runs = [], {}
    for dataset in scaled.datasets:
        for setting in scaled.settings:
            for method in scaled.methods:
                probe = Cell(card.id, scaled.scale, dataset, setting.name, method.name, 0)
                config = cell_config(scaled, probe)
                for seed in scaled.seeds:
                    cell = dataclasses.replace(probe, seed=seed, method_registry=config["method"], digest=digest(config))
                    first = runs.setdefault(_result_key({**config, "seed": seed}), cell)
                    if first is not cell:
                        cell = dataclasses.replace(cell, digest=first.digest, record_setting=first.setting, record_seed=first.seed)
                    cells.append(cell)
    return cells


def invariant_to(method_registry: str) -> tuple[str, ...]:
    """What the method's result cannot depend on: "seed" and "setting.<field>" names."""
    return method_facts.invariant_to(method_registry)


def _result_key(config: dict) -> str:
    """The config with what the method ignores left out: cells with one key share one run. A
    method that ignores part of the setting also ignores the setting's name (only a label)."""
    ignored = invariant_to(config["method"])
    fields = {name.removeprefix("setting.") for name in ignored if name.startswith("setting.")}
    setting = {k: v for k, v in config["setting"].items() if k not in fields and not (fields and k == "name")}
    kept = {k: v for k, v in config.items() if k != "setting" and not (k == "seed" and "seed" in ignored)}
    return content_hash({**kept, "setting": setting})


def digest(config: dict) -> str:
    """The content hash of a cell's config without its seed: the seeds of one run share it."""
    return content_hash({k: v for k, v in config.items() if k != "seed"})


def cell_config(scaled: ScaledCard, cell: Cell) -> dict:
    """Everything that determines a cell's result (besides code and data)."""
    card = scaled.card
    registry_name, params = scaled.method_config(cell.method)
    return {
        "card_version": card.spec.version,
        "family": card.spec.family,
        "method": registry_name,
        "params": params,
        "dataset": cell.dataset,
        "setting": card.family.setting_config(scaled.setting(cell.setting)),
        "protocol": dataclasses.asdict(scaled.protocol),
        "seed": cell.seed,
    }


# --- the cached inputs of cells ----------------------------------------------------------------


def cell_builds(scaled: ScaledCard, cell: Cell) -> dict[str, Build]:
    """The builds a cell reads, by the names its family's run_cell sees."""
    return scaled.card.family.cell_builds(scaled, cell.dataset, scaled.setting(cell.setting), cell.seed)


def builds_of(scaled: ScaledCard, cell: Cell) -> dict[str, Build]:
    """The builds a cell reads, with the builds those read, by path."""
    found: dict[str, Build] = {}

    def walk(build: Build) -> None:
        if build.path not in found:
            found[build.path] = build
            for dep in build.inputs.values():
                walk(dep)

    for build in cell_builds(scaled, cell).values():
        walk(build)
    return found


def all_builds(scaled: ScaledCard) -> dict[str, Build]:
    """Every build the card's cells need at this scale, with the builds those read, by path."""
    found: dict[str, Build] = {}
    for cell in expand(scaled):
        for path, build in builds_of(scaled, cell).items():
            found.setdefault(path, build)
    return found


def data_state(files: list[str] | tuple[str, ...], data_root: Path | None) -> str:
    """What the DAG knows of files under the data root: each one's presence and size (a folder's
    number of entries). A rule takes it as a parameter, so a cell or build skipped for want of
    data reruns once the data is there, and a replaced file reruns what read it."""
    if not files:
        return ""
    state = []
    for name in files:
        path = Path(data_root) / name if data_root else None
        if path is None or not path.exists():
            state.append([name, None])
        else:
            state.append([name, len(list(path.iterdir())) if path.is_dir() else path.stat().st_size])
    return content_hash(state)
