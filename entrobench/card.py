"""Paper cards: read a YAML card, merge its defaults, check it against the schema.

A card is data (safe YAML, no code). Every mistake comes back as one `CardError` line that
names the file, the key path and what was expected, e.g.
`configs/tta/eata_niu2022.yaml: methods[3].params.d_margn: unknown key (did you mean d_margin?)`.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from entrobench import family as families
from entrobench import method_facts
from entrobench.claims import Claim, parse_claim, split_pinned
from entrobench.family import Family

SCALES = ("tiny", "smoke", "medium", "full")
# Scales a card runs only where it defines them: without a `scales.medium` entry a card has no
# medium scale (rather than silently running its full-scale protocol under that name)
OPTIONAL_SCALES = ("medium",)
# Names that become parts of paths and command lines (card ids, rows, settings, datasets): no
# shell syntax, no "..", no "/"
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# What a job may ask a cluster for (workflows/rules/common.smk passes them to the executor)
RESOURCES = ("mem_mb", "runtime", "gpu", "gpu_model", "gres", "constraint", "cpus_per_task", "slurm_partition", "slurm_account", "slurm_extra")
# slurm_extra reaches sbatch through the executor plugin's shell: only these options, each one
# token, values in SAFE_VALUE (no spaces, quotes, $, `, ;, |, &, <, >)
SBATCH_OPTIONS = ("signal", "qos", "exclusive", "nice", "reservation", "requeue", "no-requeue", "time-min", "mail-type", "mail-user",
                  "gpus-per-task", "gpus-per-node", "cpus-per-gpu", "mem-per-gpu", "mem-per-cpu", "gres-flags", "hint", "licenses", "tmp", "comment")
SAFE_VALUE = re.compile(r"[A-Za-z0-9_.,:=@%+/-]*")
DATASETS_DIR = "_datasets"  # configs/_datasets/<name>.yaml: datasets declared as data
MAX_SEED = 2**32 - 1  # numpy's and torch's seed range


class CardError(Exception):
    """One line: `<file>: <key>: <what was expected>`."""


@dataclass(frozen=True)
class MethodEntry:
    name: str  # row name in the table and in claims, e.g. "eta"
    method: str = ""  # registry name, e.g. "tta/eata"; defaults to "<family>/<name>"
    label: str = ""  # how the table prints the row, e.g. "BN-adapt"
    params: dict = field(default_factory=dict)  # overrides of the method's Params defaults


@dataclass(frozen=True)
class Reported:
    """A number printed in the paper, copied with its source; shown beside ours at full scale."""

    method: str
    metric: str
    value: float
    source: str  # where in the paper, e.g. "Table 2"
    unit: str = ""
    direction: str = ""  # "lower" or "higher" is better; defaults to the metric's
    dataset: str = ""  # defaults to the card's only dataset
    setting: str = ""  # defaults to every setting
    column: str = "mean"  # a per-domain column (e.g. a corruption) or "mean"


@dataclass(frozen=True)
class ClaimEntry:
    text: str  # e.g. "tent.error_pct <= source.error_pct - 5"
    scales: list = field(default_factory=lambda: list(SCALES))
    dataset: str = ""  # empty: judged on every dataset
    setting: str = ""  # empty: judged on every setting
    note: str = ""


@dataclass(frozen=True)
class Scale:
    """What a scale changes: data, model size, steps. Never a method's parameters."""

    protocol: dict = field(default_factory=dict)
    datasets: list = field(default_factory=list)
    settings: list = field(default_factory=list)  # names of the card's settings run at this scale
    methods: list = field(default_factory=list)  # names of the card's methods (rows) run at this scale; empty: all
    seeds: list = field(default_factory=list)
    # Method parameters that depend on the data and model rather than the method (the papers
    # themselves use e.g. Adam lr 1e-3 on CIFAR, SGD 2.5e-4 on ImageNet), keyed by the card's
    # method name. The card says why; every table lists them under Protocol.
    method_params: dict = field(default_factory=dict)
    resources: dict = field(default_factory=dict)  # per-cell threads, mem_mb, runtime, gpu for the DAG
    # Order among cards in one run: the jobs of a card of higher priority start first (its table
    # appears first); cheap cards are given more so a run shows a finished table early
    priority: int = 0


LAYOUTS = ("domains", "metrics")
COSTS = ("", "cpu_s", "gpu_h")


@dataclass(frozen=True)
class TableSpec:
    metric: str  # the metric in the main table (and the one leaderboards rank by)
    extra_metrics: list = field(default_factory=list)
    # "domains": columns are the family's per-domain columns of `metric` plus their mean (TTA's
    # corruptions), `extra_metrics` in a smaller table below; "metrics": one column per metric,
    # `metric` first (families whose cells have no domains, e.g. one RL run per cell)
    layout: str = "domains"
    cost: str = ""  # a last column with each cell's cost: "cpu_s" (CPU-seconds) or "gpu_h" (GPU-hours); "" for none
    # metrics shown once more in one table across all settings: columns = setting x metric (e.g.
    # temperature x accuracy), rows = methods, one table per dataset above the per-setting blocks
    pivot: list = field(default_factory=list)

    def __post_init__(self):
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.cost not in COSTS:
            raise ValueError(f"cost must be one of {', '.join(map(repr, COSTS))}, got {self.cost!r}")


@dataclass(frozen=True)
class Throughput:
    """A measured rate for the cost plan (`python -m entrobench plan`): the work one cell does per
    second on one GPU, in the unit of its family's `cell_work` (TTA: images), data loading included."""

    arch: str
    per_s: float
    source: str  # what measured it: the benchmark, its command and result file
    gpu_model: str = ""  # "": the GPU of `cost.gpu_model`
    method: str = ""  # a registry name (e.g. tta/sar); "": any method
    batch_size: int = 0  # 0: any batch size

    def __post_init__(self):
        if not self.per_s > 0 or self.batch_size < 0:
            raise ValueError(f"per_s must be > 0 and batch_size >= 0, got {self.per_s} and {self.batch_size}")


@dataclass(frozen=True)
class CostSpec:
    gpu_model: str = ""  # the GPU a job that names none is expected to get
    throughput: list[Throughput] = field(default_factory=list)


@dataclass(frozen=True)
class CardSchema:
    version: int
    title: str
    arxiv: str
    family: str
    methods: list[MethodEntry]
    datasets: list[str]
    settings: list[dict]
    seeds: list[int]
    table: TableSpec
    protocol: dict = field(default_factory=dict)
    scales: dict[str, Scale] = field(default_factory=dict)
    reported: list[Reported] = field(default_factory=list)
    claims: list[ClaimEntry] = field(default_factory=list)
    authors: str = ""
    venue: str = ""
    benchmark: str = ""  # cards sharing a benchmark share a leaderboard
    notes: list[str] = field(default_factory=list)
    defaults: list[str] = field(default_factory=list)
    cost: CostSpec = field(default_factory=CostSpec)  # measured throughput for the cost plan's estimates


@dataclass(frozen=True)
class Card:
    """A validated card. `scale(name)` gives the concrete view one scale runs."""

    id: str
    path: Path
    spec: CardSchema
    family: Family
    claims: list[tuple[ClaimEntry, Claim]]
    declared_datasets: dict = field(default_factory=dict)  # name -> the family's Dataset, from configs/_datasets/
    configs_dir: Path = Path("configs")  # where its defaults, declared datasets and tasks were looked up

    def scale(self, scale: str) -> "ScaledCard":
        if scale not in SCALES:
            raise CardError(f"{self.path}: scale {scale!r}: expected one of {', '.join(SCALES)}")
        if scale not in self.spec.scales and (scale in OPTIONAL_SCALES or self.spec.scales):
            raise CardError(f"{self.path}: scale {scale!r}: this card defines no scales.{scale} (it has: {', '.join(self.spec.scales) or 'none'})")
        over = self.spec.scales.get(scale, Scale())
        protocol = _build(self.family.Protocol, {**self.spec.protocol, **over.protocol}, f"scales.{scale}.protocol", self.path)
        settings = [_build(self.family.Setting, s, f"settings[{i}]", self.path) for i, s in enumerate(self.spec.settings)]
        if over.settings:
            settings = [s for s in settings if s.name in over.settings]
        return ScaledCard(
            card=self,
            scale=scale,
            param_overrides=dict(over.method_params),
            protocol=protocol,
            datasets=list(over.datasets or self.spec.datasets),
            settings=settings,
            methods=[m for m in self.spec.methods if not over.methods or m.name in over.methods],
            seeds=list(over.seeds or self.spec.seeds),
            resources=dict(over.resources),
            priority=over.priority,
        )

    def method(self, name: str) -> MethodEntry:
        return next(m for m in self.spec.methods if m.name == name)

    def dataset(self, name: str):
        """The family's Dataset for `name`: declared in configs/_datasets/, else built in."""
        return self.declared_datasets.get(name) or self.family.datasets[name]

    @property
    def dataset_names(self) -> list[str]:
        return sorted({*self.family.datasets, *self.declared_datasets})

    def metric(self, name: str):
        """The family's Metric `name` as this card has it (at any of its scales)."""
        found = self.family.metric(name) or next((m for s in self.spec.scales if (m := self.family.metric(name, self.scale(s)))), None)
        if found is None:
            raise KeyError(f"{self.path}: no metric {name!r}")
        return found


@dataclass(frozen=True)
class ScaledCard:
    card: Card
    scale: str
    param_overrides: dict  # per-method Params overrides of this scale
    protocol: Any  # the family's Protocol dataclass
    datasets: list[str]
    settings: list[Any]  # the family's Setting dataclasses
    methods: list[MethodEntry]  # the rows run at this scale, in the card's order
    seeds: list[int]
    resources: dict
    priority: int = 0

    def setting(self, name: str):
        return next(s for s in self.settings if s.name == name)

    def method_params(self, name: str):
        """Registry name and full Params of the card's method `name` at this scale."""
        registry_name, overrides = self._method_overrides(name)
        from methods import registry

        return registry_name, registry.get(registry_name).Params(**overrides)

    def method_config(self, name: str) -> tuple[str, dict]:
        """Registry name and full Params as a dict (what enters a cell's config), without
        importing the method where its answer is kept (entrobench/method_facts.py)."""
        registry_name, overrides = self._method_overrides(name)
        return registry_name, method_facts.params(registry_name, overrides)

    def _method_overrides(self, name: str) -> tuple[str, dict]:
        entry = self.card.method(name)
        return entry.method or f"{self.card.spec.family}/{entry.name}", {**entry.params, **self.param_overrides.get(name, {})}


def load_card(path: str | Path, configs_dir: str | Path | None = None) -> Card:
    """Read, merge defaults, validate. Raises CardError (one line) on any mistake."""
    path = Path(path)
    configs_dir = Path(configs_dir) if configs_dir else _configs_dir_of(path)
    _check_name(path.stem, "card id (the file name)", path)
    raw = _read_yaml(path)
    merged = {}
    defaults = raw.get("defaults", []) or []
    if not isinstance(defaults, list):
        raise CardError(f"{path}: defaults: expected a list of names under {configs_dir}, got {_show(defaults)}")
    for i, name in enumerate(defaults):
        merged = _merge(merged, _read_yaml(_inside(configs_dir, name, f"defaults[{i}]", path)))
    merged = _merge(merged, raw)

    spec = _build(CardSchema, merged, "", path)
    try:
        family = families.load(spec.family)
    except LookupError as err:
        raise CardError(f"{path}: family: {err}") from None
    declared = _declared_datasets(configs_dir, family)
    card = Card(id=path.stem, path=path, spec=spec, family=family, claims=[], declared_datasets=declared, configs_dir=configs_dir)
    _check_values(spec, path)
    _check_methods(spec, path)
    scaled = {scale: card.scale(scale) for scale in spec.scales}  # every scale's protocol must build
    for name, view in scaled.items():  # what the family checks first: the names below may come from it (e.g. acc_<task>)
        try:
            family.check(view)
        except ValueError as err:
            raise CardError(f"{path}: scales.{name}: {err}") from None
    _check_names(card, list(scaled.values()), path)
    claims = [(c, _parse_claim_entry(c, i, card, list(scaled.values()), path)) for i, c in enumerate(spec.claims)]
    return dataclasses.replace(card, claims=claims)


def load_cards(configs_dir: str | Path) -> dict[str, Card]:
    """All cards under configs/ (files under `_*` folders are pieces, not cards). Ids must be unique."""
    configs_dir = Path(configs_dir)
    cards: dict[str, Card] = {}
    for path in sorted(configs_dir.rglob("*.yaml")):
        if any(part.startswith("_") for part in path.relative_to(configs_dir).parts):
            continue
        card = load_card(path, configs_dir)
        if card.id in cards:
            raise CardError(f"{path}: card id {card.id!r} is also {cards[card.id].path}; card file names must be unique")
        cards[card.id] = card
    return cards


# --- reading and merging -------------------------------------------------------------------------


def _configs_dir_of(path: Path) -> Path:
    for parent in path.resolve().parents:
        if parent.name == "configs":
            return parent
    return path.resolve().parent


def _inside(configs_dir: Path, name: Any, key: str, path: Path) -> Path:
    """configs/<name>.yaml, refusing names that leave the configs folder."""
    if not isinstance(name, str) or name.startswith("/") or ".." in Path(name).parts:
        raise CardError(f"{path}: {key}: expected a name under {configs_dir} (no absolute path, no '..'), got {_show(name)}")
    target = configs_dir / f"{name}.yaml"
    if not target.is_file():
        raise CardError(f"{path}: {key}: no file {target}")
    return target


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's parser: ~10x faster on the DAG's every start
    """Safe YAML that refuses a key given twice in one mapping (plain YAML keeps the last)."""


def _no_duplicates(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice in one mapping", mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise CardError(f"{path}: no such card file")
    try:
        data = yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 (a (C)SafeLoader subclass)
    except yaml.YAMLError as err:  # keep where and why: "line 4, column 3: found duplicate key"
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise CardError(f"{path}: not valid YAML: {where}{problem}") from None
    if not isinstance(data, dict):
        raise CardError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _merge(base: dict, over: dict) -> dict:
    """Later wins; mappings merge key by key, lists are replaced whole, and `key: null` removes an
    inherited key (a card drops a scale of its defaults with `scales: {full: null}`)."""
    out = dict(base)
    for key, value in over.items():
        if value is None and key in out:
            del out[key]
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _declared_datasets(configs_dir: Path, family: Family) -> dict:
    """configs/_datasets/<name>.yaml files of this family, built by its Dataset schema."""
    declared = {}
    for path in sorted((configs_dir / DATASETS_DIR).glob("*.yaml")):
        data = _read_yaml(path)
        if data.get("family") != family.name:
            continue
        _check_name(path.stem, "dataset name (the file name)", path)
        if family.Dataset is None:
            raise CardError(f"{path}: family: {family.name!r} takes no declared datasets")
        body = {k: v for k, v in data.items() if k != "family"}
        declared[path.stem] = _build(family.Dataset, body, "", path, what="dataset")
    return declared


# --- schema checking -----------------------------------------------------------------------------


def _build(cls: type, data: Any, where: str, path: Path, what: str = "card"):
    """Build dataclass `cls` from `data`, checking keys and types, with one-line errors."""
    if dataclasses.is_dataclass(data):
        return data
    if not isinstance(data, dict):
        raise CardError(f"{path}: {where or what}: expected a mapping, got {_show(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean {close[0]}?)" if close else f" (expected one of: {', '.join(fields)})"
            raise CardError(f"{path}: {_join(where, key)}: unknown key{hint}")
    values = {}
    for name, f in fields.items():
        key = _join(where, name)
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise CardError(f"{path}: {key}: missing (expected {_type_name(hints[name])})")
            continue
        values[name] = _check_type(data[name], hints[name], key, path)
    try:
        return cls(**values)
    except (ValueError, TypeError) as err:  # the dataclass's own checks (__post_init__)
        raise CardError(f"{path}: {where or what}: {err}") from None


def _check_type(value: Any, hint: Any, key: str, path: Path):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key, path)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            if arg is type(None) and value is None:
                return None
        non_none = [a for a in args if a is not type(None)]
        if value is None:
            raise CardError(f"{path}: {key}: expected {_type_name(hint)}, got null")
        return _check_type(value, non_none[0], key, path)
    if origin is list or hint is list:
        if not isinstance(value, list):
            raise CardError(f"{path}: {key}: expected a list, got {_show(value)}")
        item = args[0] if args else Any
        return [_check_type(v, item, f"{key}[{i}]", path) for i, v in enumerate(value)]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise CardError(f"{path}: {key}: expected a mapping, got {_show(value)}")
        item = args[1] if args else Any
        return {k: _check_type(v, item, f"{key}.{k}", path) for k, v in value.items()}
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if hint in (int, float) and isinstance(value, bool) or not isinstance(value, hint):
        raise CardError(f"{path}: {key}: expected {_type_name(hint)}, got {_show(value)}")
    if hint is float and not math.isfinite(value):  # YAML reads .inf and .nan as numbers
        raise CardError(f"{path}: {key}: expected a finite number, got {value}")
    return value


def _type_name(hint: Any) -> str:
    if dataclasses.is_dataclass(hint):
        return "a mapping"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is list or hint is list:
        return f"a list of {_type_name(args[0])}" if args else "a list"
    if origin is dict or hint is dict:
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false", type(None): "null"}.get(hint, str(hint))


def _show(value: Any) -> str:
    text = repr(value)
    return f"{text[:40]}..." if len(text) > 40 else text


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


# --- cross-references ----------------------------------------------------------------------------


def _check_name(name: str, what: str, path: Path, key: str = "") -> None:
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name) or ".." in name:
        where = f"{key}: " if key else ""
        raise CardError(f"{path}: {where}{what} {name!r}: use letters, digits, '_', '-' and '.' only (no '..'), starting with a letter or digit")


def _check_values(spec: CardSchema, path: Path) -> None:
    """Ranges and uniqueness the schema's types cannot say."""
    for key, seeds in [("seeds", spec.seeds), *((f"scales.{s}.seeds", over.seeds) for s, over in spec.scales.items())]:
        for i, seed in enumerate(seeds):
            if not 0 <= seed <= MAX_SEED:
                raise CardError(f"{path}: {key}[{i}]: expected a seed in 0..{MAX_SEED}, got {seed}")
        if len(set(seeds)) != len(seeds):
            raise CardError(f"{path}: {key}: a seed appears twice ({seeds})")
    names = []
    for i, setting in enumerate(spec.settings):
        name = setting.get("name") if isinstance(setting, dict) else None
        _check_name(name, "setting name", path, f"settings[{i}].name")
        if name in names:
            raise CardError(f"{path}: settings[{i}].name: {name!r} appears twice; setting names must be unique")
        names.append(name)
    for i, entry in enumerate(spec.methods):
        _check_name(entry.name, "row name", path, f"methods[{i}].name")
    for scale, over in spec.scales.items():
        for key, value in over.resources.items():
            where = f"scales.{scale}.resources.{key}"
            _check_choice(key, list(RESOURCES), where, "resource", path)
            if key in ("mem_mb", "runtime", "gpu", "cpus_per_task"):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise CardError(f"{path}: {where}: expected a whole number >= 0, got {_show(value)}")
            elif key == "slurm_extra":
                _check_slurm_extra(value, where, path)
            elif not isinstance(value, str) or not SAFE_VALUE.fullmatch(value):
                raise CardError(f"{path}: {where}: expected letters, digits and _.,:=@%+/- only, got {_show(value)}")


def _check_slurm_extra(value: Any, where: str, path: Path) -> None:
    """`--option=value` tokens of SBATCH_OPTIONS only: the value reaches a shell on the submitting node."""
    if not isinstance(value, str):
        raise CardError(f"{path}: {where}: expected a string of sbatch options, got {_show(value)}")
    for token in value.split():
        name, _, arg = token.removeprefix("--").partition("=")
        if not token.startswith("--") or name not in SBATCH_OPTIONS:
            raise CardError(f"{path}: {where}: {token!r} is not an allowed sbatch option (allowed: {', '.join('--' + o for o in SBATCH_OPTIONS)})")
        if not SAFE_VALUE.fullmatch(arg):
            raise CardError(f"{path}: {where}: {token!r}: option values may hold letters, digits and _.,:=@%+/- only")


def _check_methods(spec: CardSchema, path: Path) -> None:
    from methods import registry

    seen = set()
    for i, entry in enumerate(spec.methods):
        if entry.name in seen:
            raise CardError(f"{path}: methods[{i}].name: {entry.name!r} appears twice; row names must be unique")
        seen.add(entry.name)
        name = entry.method or f"{spec.family}/{entry.name}"
        try:
            registry.source_file(name)
        except registry.UnknownMethodError as err:
            key = "method" if entry.method else "name"
            raise CardError(f"{path}: methods[{i}].{key}: {err}") from None
        checked = [(entry.params, f"methods[{i}].params")]
        checked += [({**entry.params, **over.method_params[entry.name]}, f"scales.{scale}.method_params.{entry.name}")
                    for scale, over in spec.scales.items() if entry.name in over.method_params]
        for params, where in checked:  # kept once they pass (entrobench/method_facts.py): no import then
            method_facts.check(name, params, lambda cls, data, where=where: _build(cls, data, where, path))
    for scale, over in spec.scales.items():
        for name in over.method_params:
            _check_choice(name, sorted(seen), f"scales.{scale}.method_params.{name}", "method", path)


def _check_names(card: Card, scaled: list[ScaledCard], path: Path) -> None:
    spec = card.spec
    for i, name in enumerate(spec.datasets):
        _check_choice(name, card.dataset_names, f"datasets[{i}]", "dataset", path)
    setting_names = [s["name"] for s in spec.settings]
    metrics = _metric_names(card, scaled)
    _check_choice(spec.table.metric, metrics, "table.metric", "metric", path)
    for key in ("extra_metrics", "pivot"):
        for i, metric in enumerate(getattr(spec.table, key)):
            _check_choice(metric, metrics, f"table.{key}[{i}]", "metric", path)
    for scale, over in spec.scales.items():
        if scale not in SCALES:
            raise CardError(f"{path}: scales.{scale}: unknown scale (expected one of: {', '.join(SCALES)})")
        for i, name in enumerate(over.datasets):
            _check_choice(name, card.dataset_names, f"scales.{scale}.datasets[{i}]", "dataset", path)
        for i, name in enumerate(over.settings):
            _check_choice(name, setting_names, f"scales.{scale}.settings[{i}]", "setting", path)
        for i, name in enumerate(over.methods):
            _check_choice(name, [m.name for m in spec.methods], f"scales.{scale}.methods[{i}]", "method", path)
    methods = [m.name for m in spec.methods]
    for i, rep in enumerate(spec.reported):
        _check_choice(rep.method, methods, f"reported[{i}].method", "method", path)
        _check_choice(rep.metric, metrics, f"reported[{i}].metric", "metric", path)
        if rep.direction not in ("", "lower", "higher"):
            raise CardError(f"{path}: reported[{i}].direction: expected 'lower' or 'higher', got {rep.direction!r}")
        if rep.setting:
            _check_choice(rep.setting, setting_names, f"reported[{i}].setting", "setting", path)
        if rep.dataset:
            _check_choice(rep.dataset, card.dataset_names, f"reported[{i}].dataset", "dataset", path)
    for i, claim in enumerate(spec.claims):
        for j, scale in enumerate(claim.scales):
            _check_choice(scale, list(SCALES), f"claims[{i}].scales[{j}]", "scale", path)
        if claim.setting:
            _check_choice(claim.setting, setting_names, f"claims[{i}].setting", "setting", path)
        if claim.dataset:
            _check_choice(claim.dataset, card.dataset_names, f"claims[{i}].dataset", "dataset", path)


def _metric_names(card: Card, scaled: list[ScaledCard]) -> list[str]:
    """Every metric the family has for this card, at any of its scales (metrics such as
    `acc_<task>` exist only where a protocol names the task)."""
    names = dict.fromkeys(card.family.metric_names())
    for view in scaled:
        names.update(dict.fromkeys(card.family.metric_names(view)))
    return list(names)


def _check_choice(value: str, allowed: list[str], key: str, what: str, path: Path) -> None:
    if value not in allowed:
        close = difflib.get_close_matches(str(value), allowed, n=1)
        hint = f"did you mean {close[0]}?" if close else f"expected one of: {', '.join(allowed)}"
        raise CardError(f"{path}: {key}: unknown {what} {value!r} ({hint})")


def _parse_claim_entry(entry: ClaimEntry, i: int, card: Card, scaled: list[ScaledCard], path: Path) -> Claim:
    try:
        claim = parse_claim(entry.text)
    except ValueError as err:
        raise CardError(f"{path}: claims[{i}].text: {err}") from None
    spec = card.spec
    methods, metrics = [m.name for m in spec.methods], _metric_names(card, scaled)
    for method, pinned in claim.references:
        metric, setting = split_pinned(pinned)
        _check_choice(method, methods, f"claims[{i}].text", "method", path)
        _check_choice(metric, metrics, f"claims[{i}].text", "metric", path)
        if setting:
            _check_choice(setting, [s["name"] for s in spec.settings], f"claims[{i}].text", "setting", path)
        for scale in entry.scales:
            run = spec.scales[scale].methods if scale in spec.scales else []
            if run and method not in run:
                raise CardError(f"{path}: claims[{i}].scales: {method!r} does not run at scale {scale!r} "
                                f"(scales.{scale}.methods: {', '.join(run)}); leave {scale!r} out of the claim's scales")
    return claim
