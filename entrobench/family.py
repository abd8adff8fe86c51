"""The family contract: everything the engine and the DAG know about a family of papers.

A family is one folder, `entrobench/protocols/<name>/` (or `<plugin>/protocols/<name>/` for a
plug-in folder named in $ENTROBENCH_PLUGINS), whose `family.py` defines `FAMILY`, an instance of
a `Family` subclass. Its methods live in `methods/<name>/` (or `<plugin>/methods/<name>/`). The
engine, the CLI and the Snakefile never name a family: they ask `FAMILY` for

- the card's schema: `Protocol` and `Setting` dataclasses (a setting has a `name`), `Dataset`
  (the schema of a dataset declared in YAML, `configs/_datasets/<name>.yaml`), and the
  built-in `datasets` and `metrics`;
- the cached inputs a cell reads (`cell_builds`): `Build`s, each made once by the DAG's one
  `build` rule and shared by every cell, card and scale that agree on its config;
- the files whose edit reruns a cell (`cell_sources`), besides its method's file;
- `run_cell` (one cell -> metrics and curves) and `draw` (a card's plots from its records).

`family.py` stays light (dataclasses, no torch): the DAG imports it to plan. Heavy work is
imported inside `run_cell`, `draw` and the `make` functions of builds.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from entrobench.hashing import content_hash
from entrobench.metrics import Metric

if TYPE_CHECKING:
    from entrobench.card import Card, ScaledCard
    from entrobench.progress import Progress

CACHE = "results/_cache"


@dataclass(frozen=True)
class Build:
    """A cached input: a folder `results/_cache/<owner>/<kind>/<name>-<hash>/` made once by
    `make`, a "module:function" called as `function(BuildRun) -> dict` (a summary, written to
    the folder's build.json). The hash covers `make` and `config`, so a config change makes a
    new folder and reruns exactly the cells that read it.

    A `make` that cannot run here (data or weights missing) raises `record.Skip`; the engine
    writes the reason to the folder's skipped.json and every cell reading it is skipped with it.
    """

    owner: str  # first folder under results/_cache: the family's name, or a shared one ("models")
    kind: str  # what it is, e.g. "source", "warmup", "data"
    name: str  # readable part of the folder name, e.g. "mnist_c-small_cnn-bn"
    make: str  # "package.module:function"
    config: dict  # everything the folder's content depends on (besides code and data files)
    inputs: dict[str, "Build"] = field(default_factory=dict)  # other builds it reads, by name
    sources: tuple[str, ...] = ()  # files whose edit remakes it (its code; task files)
    # files under the data root it reads: their presence and size decide whether a skipped build is stale
    data_files: tuple[str, ...] = ()
    # True: the job asks for the scale's resources (GPU, memory, walltime), like a cell; False:
    # a light job (data preparation) that asks for the cluster's defaults
    heavy: bool = False

    @property
    def path(self) -> str:
        return f"{CACHE}/{self.owner}/{self.kind}/{self.name}-{content_hash({'make': self.make, 'config': self.config})}"


@dataclass
class BuildRun:
    """What a build's `make` function gets."""

    config: dict
    inputs: dict[str, Path]  # the folders of the builds it reads
    out: Path  # the folder to fill (exists, empty)
    data_root: Path | None
    progress: "Progress"
    threads: int = 1
    checkpoint_path: Path | None = None  # for resumable long builds (entrobench/checkpoint.py)


@dataclass
class CellRun:
    """What a family's `run_cell` gets: the cell's config (`cells.cell_config`: method, params,
    dataset, setting, protocol, seed), its built inputs, and where to save what it may resume."""

    config: dict
    inputs: dict[str, Path]  # name -> folder of each Build from `cell_builds`
    data_root: Path | None
    method_cls: type  # the registered method class
    progress: "Progress"
    dataset: Any = None  # the family's Dataset for config["dataset"] (built-in or declared in YAML)
    checkpoint_path: Path | None = None  # save here every N steps and on SIGTERM (entrobench/checkpoint.py)
    artifact_dir: Path | None = None  # files the cell wants kept beside its record (figures); logged to MLflow
    threads: int = 1


class Family:
    """Subclass per family; `family.py` sets `FAMILY = MyFamily()`."""

    name: ClassVar[str]
    Protocol: ClassVar[type]  # dataclass: what a scale may change (data, model size, steps)
    Setting: ClassVar[type]  # dataclass with a `name`: one block of the table (batch size, temperature, ...)
    Dataset: ClassVar[type | None] = None  # dataclass schema of a dataset declared in YAML; None: built-ins only
    datasets: ClassVar[dict[str, Any]] = {}  # built-in datasets: name -> Dataset
    metrics: ClassVar[dict[str, Metric]] = {}

    # --- the card -----------------------------------------------------------------------------

    def columns(self, protocol) -> list[str]:
        """The per-domain columns of a "domains" table (e.g. corruptions); [] for none."""
        return []

    def metric(self, name: str, protocol=None) -> Metric | None:
        """The metric called `name`, or None. Override for metrics that exist by pattern (e.g.
        `acc_<task>` for every task a protocol names)."""
        return self.metrics.get(name)

    def metric_names(self, protocol=None) -> list[str]:
        """The names `metric` knows, for suggestions in card errors."""
        return list(self.metrics)

    def check(self, scaled: "ScaledCard") -> None:
        """Cross-checks of a card at one scale beyond the schema; raise ValueError with one line."""

    # --- the DAG ------------------------------------------------------------------------------

    def cell_builds(self, scaled: "ScaledCard", dataset: str, setting, seed: int) -> dict[str, Build]:
        """The cached inputs a cell reads, by name (`CellRun.inputs` has the same names)."""
        return {}

    def cell_sources(self, scaled: "ScaledCard", dataset: str, setting) -> list[Path]:
        """Files whose edit reruns the cell, besides its method's file and the method family's
        base.py: the family's own code the cell runs, and data files that ship with the repo."""
        return []

    # --- the work -----------------------------------------------------------------------------

    def run_cell(self, run: CellRun) -> dict:
        """One cell: {"metrics": {name: float}, "curves": {name: [float]}, ...anything else for
        the record}. Raise `record.Skip(reason)` where it cannot run here."""
        raise NotImplementedError

    def draw(self, card: "Card", scale: str, records: list[dict], out_dir: Path) -> list[Path]:
        """A card's plots from its records (no computation). Returns the files written."""
        return []

    # --- helpers for subclasses ---------------------------------------------------------------

    @classmethod
    def here(cls, module_file: str) -> Path:
        """The family's folder, from `__file__` of one of its modules."""
        return Path(module_file).resolve().parent
