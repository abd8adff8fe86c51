"""The cost of a target before it is submitted: per card and scale, the jobs, what they request
(GPUs, GPU-hours, CPU-hours of walltime) and, where a job says how much work it holds, an estimate
of the GPU-hours it will use, marked as an estimate.

Engine-agnostic: plain dataclasses in, text out. The caller (the CLI's `plan`, or the top of a
dry run) turns its DAG into `Job`s; a family's cost model turns work into seconds:

    jobs = [Job("eata_niu2022", "full", "cell", Resources(gpu=1, runtime=240, mem_mb=32000, cpus=8),
                Work(images=15 * 50_000, arch="resnet50", method="eata")), ...]
    print(render(plan(jobs, CostModel({("resnet50", "h100"): 2000.0}, gpu_model="h100"))))

Requested GPU-hours are GPUs x walltime (a retry asks again); the estimate is GPUs x images /
(images/s) for the architecture on the GPU model, from measured throughput (bench/tta_gpu.py). A
job with no work, or no throughput for its architecture and GPU, has no estimate, and the row says
for how many of its jobs the estimate stands.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from entrobench.card import Card, ScaledCard

# What a job asks a cluster for when its card says nothing (workflows/rules/common.smk reads these
# too, so a plan and a run agree). The signal: SIGTERM two minutes before the walltime, so long
# jobs save a checkpoint (entrobench/checkpoint.py).
JOB_DEFAULTS = {"mem_mb": 2000, "runtime": 30, "slurm_extra": "--signal=TERM@120"}


def job_request(scale_resources: Mapping, heavy: bool, overrides: Mapping = ()) -> dict:
    """What one job asks for: the scale's resources for a heavy job (a cell, a source model), the
    defaults for a light one (data preparation), cluster placement (`overrides`: partition,
    account from --config) over both."""
    return {**JOB_DEFAULTS, **(scale_resources if heavy else {}), **dict(overrides)}


@dataclass(frozen=True)
class Resources:
    gpu: int = 0  # GPUs per job
    runtime: float = 0.0  # walltime asked for, minutes
    mem_mb: int = 0
    cpus: int = 1
    gpu_model: str = ""  # "" = whichever the cluster gives

    @classmethod
    def of(cls, resources: Mapping) -> Resources:
        """From a job's resources as a card lists them (`cpus_per_task` is CPUs; keys that are
        not costs, e.g. slurm_partition, are left out)."""
        known = {k: resources[k] for k in ("gpu", "runtime", "mem_mb", "cpus", "gpu_model") if resources.get(k) is not None}
        if resources.get("cpus_per_task"):
            known["cpus"] = resources["cpus_per_task"]
        return cls(**known)


@dataclass(frozen=True)
class Work:
    images: int  # images through the model in this job (all its domains, every pass counted by the cost model)
    arch: str
    method: str = ""
    batch_size: int = 0  # 0: not said


@dataclass(frozen=True)
class Job:
    card: str
    scale: str
    kind: str  # e.g. "cell", "build", "skipped" (runs on the login node: asks for nothing)
    resources: Resources = field(default_factory=Resources)
    work: Work | None = None


@dataclass(frozen=True)
class CostModel:
    """Measured throughput, images/s, by (arch, gpu model), (arch, gpu model, method) or (arch, gpu
    model, method, batch size), "" and 0 standing for any method and any batch size: the most
    specific key wins. `gpu_model` is the GPU a job that names none is expected to get."""

    images_per_s: Mapping[tuple, float]
    gpu_model: str = ""

    def seconds(self, work: Work, gpu_model: str) -> float | None:
        gpu_model = gpu_model or self.gpu_model
        a, m, b = work.arch, work.method, work.batch_size
        keys = [(a, gpu_model, m, b), (a, gpu_model, "", b), (a, gpu_model, m, 0), (a, gpu_model, "", 0), (a, gpu_model, m), (a, gpu_model)]
        rate = next((self.images_per_s[k] for k in keys if self.images_per_s.get(k)), None)
        return work.images / rate if rate else None


@dataclass(frozen=True)
class Row:
    card: str
    scale: str
    jobs: dict[str, int]  # kind -> count
    gpus: int  # GPUs requested over all jobs
    gpu_hours: float  # requested: GPUs x walltime
    cpu_hours: float  # requested: CPUs x walltime
    estimate_gpu_hours: float | None  # over the jobs that have an estimate
    estimated_jobs: int  # how many GPU jobs the estimate covers
    gpu_jobs: int
    has_cost_model: bool = True  # False: the card has no throughput figures (requested hours only)


def plan(jobs: Iterable[Job], cost: CostModel | Mapping[str, CostModel | None] | None = None) -> list[Row]:
    """One row per (card, scale), in the order they first appear. `cost`: one model for every
    card, or one per card id (None: that card has none)."""
    groups: dict[tuple[str, str], list[Job]] = {}
    for job in jobs:
        groups.setdefault((job.card, job.scale), []).append(job)
    rows = []
    for (card, scale), group in groups.items():
        model = cost.get(card) if isinstance(cost, Mapping) else cost
        kinds: dict[str, int] = {}
        estimate, estimated = 0.0, 0
        gpu_jobs = [j for j in group if j.resources.gpu]
        for job in group:
            kinds[job.kind] = kinds.get(job.kind, 0) + 1
        for job in gpu_jobs:
            seconds = model.seconds(job.work, job.resources.gpu_model) if model and job.work else None
            if seconds is not None:
                estimate += job.resources.gpu * seconds / 3600
                estimated += 1
        rows.append(Row(
            card, scale, kinds,
            gpus=sum(j.resources.gpu for j in group),
            gpu_hours=sum(j.resources.gpu * j.resources.runtime / 60 for j in group),
            cpu_hours=sum(j.resources.cpus * j.resources.runtime / 60 for j in group),
            estimate_gpu_hours=estimate if estimated else None,
            estimated_jobs=estimated,
            gpu_jobs=len(gpu_jobs),
            has_cost_model=model is not None,
        ))
    return rows


def render(rows: list[Row]) -> str:
    """A plain-text table; estimates carry "~" and say how many GPU jobs they cover."""
    header = ("card", "scale", "jobs", "GPUs", "GPU-h requested", "GPU-h estimate", "CPU-h requested")
    lines = [header]
    for r in rows:
        jobs = f"{sum(r.jobs.values())} (" + ", ".join(f"{n} {k}" for k, n in r.jobs.items()) + ")"
        lines.append((r.card, r.scale, jobs, str(r.gpus), f"{r.gpu_hours:,.1f}", _estimate(r), f"{r.cpu_hours:,.1f}"))
    if len(rows) > 1:
        total_est = [r.estimate_gpu_hours for r in rows if r.estimate_gpu_hours is not None]
        covered, gpu_jobs = sum(r.estimated_jobs for r in rows), sum(r.gpu_jobs for r in rows)
        lines.append((
            "total", "", str(sum(sum(r.jobs.values()) for r in rows)), str(sum(r.gpus for r in rows)),
            f"{sum(r.gpu_hours for r in rows):,.1f}",
            _estimate_text(sum(total_est) if total_est else None, covered, gpu_jobs),
            f"{sum(r.cpu_hours for r in rows):,.1f}",
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths))).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    text.append("~ = estimate: GPUs x images / measured images/s for the architecture and GPU model; "
                "requested = GPUs (or CPUs) x walltime asked for")
    return "\n".join(text)


def _estimate(row: Row) -> str:
    if row.gpu_jobs and not row.has_cost_model:
        return "requested only (no cost model)"
    return _estimate_text(row.estimate_gpu_hours, row.estimated_jobs, row.gpu_jobs)


def _estimate_text(hours: float | None, covered: int, gpu_jobs: int) -> str:
    if not gpu_jobs:
        return "-"
    if hours is None:
        return "no estimate"
    return f"~{hours:,.2f}" + ("" if covered == gpu_jobs else f" ({covered} of {gpu_jobs} jobs)")


# --- from cards to jobs ----------------------------------------------------------------------------


def cost_model(card: "Card") -> CostModel | None:
    """The card's measured throughput (`cost:`) as a cost model; None where it has no figures."""
    spec = card.spec.cost
    if not spec.throughput:
        return None
    rates = {(t.arch, t.gpu_model or spec.gpu_model, t.method, t.batch_size): t.per_s for t in spec.throughput}
    return CostModel(rates, gpu_model=spec.gpu_model)


def card_jobs(scaled_cards: Iterable["ScaledCard"], results: str | Path = "results", overrides: Mapping = ()) -> list[Job]:
    """The jobs a run of these cards at these scales submits, as the DAG makes them: one per cell
    record (cells shared between cards count once, for the first card), one per build the cells
    read; a cell skipped by design runs on the submitting node ("skipped": it asks for nothing and
    reads no build), and a record or build already there is "done"."""
    from entrobench.cells import builds_of, expand

    jobs, seen = [], set()

    def add(card_id: str, scale: str, path, kind: str, resources: Resources = Resources(), work: Work | None = None) -> None:
        if str(path) not in seen:
            seen.add(str(path))
            jobs.append(Job(card_id, scale, "done" if Path(path).exists() else kind, Resources() if Path(path).exists() else resources, work))

    for scaled in scaled_cards:
        card, family, scale = scaled.card, scaled.card.family, scaled.scale
        builds = {}
        for cell in expand(scaled):
            setting = scaled.setting(cell.setting)
            if family.cell_skip(scaled, cell.dataset, setting):
                add(card.id, scale, cell.record_path(results), "skipped")
                continue
            work = family.cell_work(scaled, cell.dataset, setting, cell.method_registry)
            add(card.id, scale, cell.record_path(results), "cell", Resources.of(job_request(scaled.resources, True, overrides)), work)
            builds.update(builds_of(scaled, cell))
        for build in builds.values():
            add(card.id, scale, build.folder(results), "build", Resources.of(job_request(scaled.resources, build.heavy, overrides)))
    return jobs
