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
- `run_cell` (one cell -> metrics and curves) and `draw` (a card's plots from its records);
- for a cluster: what to download before a run (`stage_needs`), the work a cell does for the
  cost plan (`cell_work`), and cells skipped by design, which ask for no GPU (`cell_skip`).

`family.py` stays light (dataclasses, no torch): the DAG imports it to plan. Heavy work is
imported inside `run_cell`, `draw` and the `make` functions of builds.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from entrobench.hashing import content_hash
from entrobench.metrics import Metric

if TYPE_CHECKING:
    from entrobench.card import Card, ScaledCard
    from entrobench.plan import Work
    from entrobench.progress import Progress

CACHE = "_cache"  # under the results folder


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
        """Where the DAG keeps it, under the default results folder."""
        return str(self.folder("results"))

    def folder(self, results: str | Path) -> Path:
        """Where it is kept under a results folder."""
        return Path(results) / CACHE / self.owner / self.kind / f"{self.name}-{content_hash({'make': self.make, 'config': self.config})}"


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
    artifact_dir: Path | None = None  # files the cell keeps beside its record (figures), named under "artifacts" in its result; logged to MLflow
    threads: int = 1


class Family:
    """Subclass per family; `family.py` sets `FAMILY = MyFamily()`."""

    name: ClassVar[str]
    Protocol: ClassVar[type]  # dataclass: what a scale may change (data, model size, steps)
    Setting: ClassVar[type]  # dataclass with a `name`: one block of the table (batch size, temperature, ...)
    Dataset: ClassVar[type | None] = None  # dataclass schema of a dataset declared in YAML; None: built-ins only
    datasets: ClassVar[dict[str, Any]] = {}  # built-in datasets: name -> Dataset
    metrics: ClassVar[dict[str, Metric]] = {}
    # Modules a local run imports once, in its warm server, before it forks a process per job
    # (entrobench/warm.py): the heavy imports of run_cell. A name missing here costs time, not results.
    warm_imports: ClassVar[tuple[str, ...]] = ()

    # --- the card -----------------------------------------------------------------------------

    def columns(self, protocol) -> list[str]:
        """The per-domain columns of a "domains" table (e.g. corruptions); [] for none."""
        return []

    def metric(self, name: str, scaled: "ScaledCard | None" = None) -> Metric | None:
        """The metric called `name` (at one scale of a card, or in general), or None. Override
        for metrics that exist by what a card declares (e.g. `acc_<task>` for each task it names)."""
        return self.metrics.get(name)

    def metric_names(self, scaled: "ScaledCard | None" = None) -> list[str]:
        """The names `metric` knows, for checks and suggestions in card errors."""
        return list(self.metrics)

    def check(self, scaled: "ScaledCard") -> None:
        """Cross-checks of a card at one scale beyond the schema; raise ValueError with one line."""

    def setting_config(self, setting) -> dict:
        """The setting as it enters a cell's config, and so its hash and record path: its fields.
        A family that adds a field to its Setting may leave it out while it holds its default, so
        the records of existing cards keep their paths."""
        return dataclasses.asdict(setting)

    # --- the DAG ------------------------------------------------------------------------------

    def cell_builds(self, scaled: "ScaledCard", dataset: str, setting, seed: int) -> dict[str, Build]:
        """The cached inputs a cell reads, by name (`CellRun.inputs` has the same names)."""
        return {}

    def cell_sources(self, scaled: "ScaledCard", dataset: str, setting) -> list[Path]:
        """Files whose edit reruns the cell, besides its method's file and the method family's
        base.py: the family's own code the cell runs, and data files that ship with the repo."""
        return []

    def cell_data_files(self, scaled: "ScaledCard", dataset: str, setting) -> list[str]:
        """Files under the data root a cell reads itself (not through a build), relative to it:
        their presence and size are part of the DAG's view, so a cell skipped for want of them
        reruns once they appear."""
        return []

    # --- the cluster --------------------------------------------------------------------------

    def stage_needs(self, scaled: "ScaledCard") -> list[str]:
        """What `python -m entrobench stage <card> --scale S` downloads, checks and lays out under
        the data root on a login node (names in entrobench.stage.CATALOG), so that compute nodes
        run offline. []: nothing to fetch."""
        return []

    def cell_work(self, scaled: "ScaledCard", dataset: str, setting, method: str) -> "Work | None":
        """What one cell of `method` (a registry name) processes, for the cost plan's estimate
        (`python -m entrobench plan`, entrobench/plan.py). None: no estimate."""
        return None

    def cell_skip(self, scaled: "ScaledCard", dataset: str, setting) -> str:
        """Why this dataset and setting's cells cannot run at this scale anywhere yet ("" if they
        can). Such a cell asks the cluster for no GPU and a short walltime, writes its skipped
        record without running `run_cell`, and the cost plan counts it as skipped."""
        return ""

    # --- the work -----------------------------------------------------------------------------

    def run_cell(self, run: CellRun) -> dict:
        """One cell: {"metrics": {name: float}, "curves": {name: [float]}, ...anything else for
        the record}. Raise `record.Skip(reason)` where it cannot run here."""
        raise NotImplementedError

    def draw(self, card: "Card", scale: str, records: list[dict], out_dir: Path) -> list[Path]:
        """A card's plots from its records (no computation). Returns the files written."""
        return []



# --- finding families ----------------------------------------------------------------------------

PLUGINS_ENV = "ENTROBENCH_PLUGINS"  # folders (os.pathsep-separated) holding protocols/<family>/ and methods/<family>/


def plugin_dirs() -> list[Path]:
    return [Path(p).resolve() for p in os.environ.get(PLUGINS_ENV, "").split(os.pathsep) if p.strip()]


def activate_plugins() -> None:
    """Make the families and methods of every plug-in folder importable as if they sat in the
    project: `<plugin>/protocols/<name>/` as `entrobench.protocols.<name>`, `<plugin>/methods/<name>/`
    as `methods.<name>`. Idempotent; jobs inherit the variable, so they see the same families."""
    import entrobench.protocols
    import methods

    for folder in plugin_dirs():
        for package, sub in ((entrobench.protocols, "protocols"), (methods, "methods")):
            path = str(folder / sub)
            if (folder / sub).is_dir() and path not in package.__path__:
                package.__path__.append(path)


def names() -> list[str]:
    """Every family on disk: a folder with a family.py in the project or a plug-in folder."""
    import entrobench.protocols

    activate_plugins()
    return sorted({p.name for root in entrobench.protocols.__path__ for p in Path(root).iterdir() if (p / "family.py").is_file()})


def load(name: str) -> Family:
    """The family called `name`; LookupError (one line, with the near names) if there is none."""
    known = names()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        raise LookupError(f"unknown family {name!r} (" + (f"did you mean {close[0]}?)" if close else f"expected one of: {', '.join(known)})"))
    module = importlib.import_module(f"entrobench.protocols.{name}.family")
    family = getattr(module, "FAMILY", None)
    if not isinstance(family, Family):
        raise LookupError(f"{module.__file__}: defines no FAMILY = <a Family subclass>()")
    return family


def folder(family: Family) -> Path:
    """The family's folder (its family.py's), wherever it was found."""
    return Path(inspect.getfile(type(family))).resolve().parent
