"""A toy family: estimate the mean of a fixed sample of numbers. The cached input ("sample") is
drawn once per dataset and shared by every cell; the method decides how to estimate."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from entrobench.family import Build, CellRun, Family
from entrobench.metrics import Metric
from entrobench.protocols import Dataset


@dataclass(frozen=True)
class Protocol:
    n: int = 100  # numbers in the sample


@dataclass(frozen=True)
class Setting:
    name: str
    shift: float = 0.0  # added to every number


class Toy(Family):
    name = "toy"
    Protocol = Protocol
    Setting = Setting
    datasets = {"normal": Dataset(False, "numbers from N(3, 1), seeded"), "uniform": Dataset(False, "numbers from U(0, 6), seeded")}
    metrics = {"abs_error": Metric("units", "lower", "|estimate - true mean|"), "estimate": Metric("units", "", "the estimate")}

    def cell_builds(self, scaled, dataset, setting, seed):
        return {"sample": Build("toy", "sample", dataset, "entrobench.protocols.toy.work:draw", {"dataset": dataset, "n": scaled.protocol.n},
                                sources=(str(Path(__file__).with_name("work.py")),))}

    def cell_sources(self, scaled, dataset, setting):
        return [Path(__file__).with_name("work.py")]

    def run_cell(self, run: CellRun) -> dict:
        from entrobench.protocols.toy.work import run_cell

        return run_cell(run)


FAMILY = Toy()
