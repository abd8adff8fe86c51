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


@dataclass(frozen=True)
class Resources:
    gpu: int = 0  # GPUs per job
    runtime: float = 0.0  # walltime asked for, minutes
    mem_mb: int = 0
    cpus: int = 1
    gpu_model: str = ""  # "" = whichever the cluster gives

    @classmethod
    def of(cls, resources: Mapping) -> Resources:
        """From a card's `resources:` mapping (unknown keys, e.g. slurm_partition, are not costs)."""
        return cls(**{k: resources[k] for k in ("gpu", "runtime", "mem_mb", "cpus", "gpu_model") if k in resources})


@dataclass(frozen=True)
class Work:
    images: int  # images through the model in this job (all its domains, every pass counted by the cost model)
    arch: str
    method: str = ""


@dataclass(frozen=True)
class Job:
    card: str
    scale: str
    kind: str  # e.g. "cell", "build", "skipped" (runs on the login node: asks for nothing)
    resources: Resources = field(default_factory=Resources)
    work: Work | None = None


@dataclass(frozen=True)
class CostModel:
    """Measured throughput, images/s, by (arch, gpu model) or (arch, gpu model, method): the most
    specific key wins. `gpu_model` is the GPU a job that names none is expected to get."""

    images_per_s: Mapping[tuple, float]
    gpu_model: str = ""

    def seconds(self, work: Work, gpu_model: str) -> float | None:
        gpu_model = gpu_model or self.gpu_model
        rate = self.images_per_s.get((work.arch, gpu_model, work.method)) or self.images_per_s.get((work.arch, gpu_model))
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


def plan(jobs: Iterable[Job], cost: CostModel | None = None) -> list[Row]:
    """One row per (card, scale), in the order they first appear."""
    groups: dict[tuple[str, str], list[Job]] = {}
    for job in jobs:
        groups.setdefault((job.card, job.scale), []).append(job)
    rows = []
    for (card, scale), group in groups.items():
        kinds: dict[str, int] = {}
        estimate, estimated = 0.0, 0
        gpu_jobs = [j for j in group if j.resources.gpu]
        for job in group:
            kinds[job.kind] = kinds.get(job.kind, 0) + 1
        for job in gpu_jobs:
            seconds = cost.seconds(job.work, job.resources.gpu_model) if cost and job.work else None
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
    return _estimate_text(row.estimate_gpu_hours, row.estimated_jobs, row.gpu_jobs)


def _estimate_text(hours: float | None, covered: int, gpu_jobs: int) -> str:
    if not gpu_jobs:
        return "-"
    if hours is None:
        return "no estimate"
    return f"~{hours:,.2f}" + ("" if covered == gpu_jobs else f" ({covered} of {gpu_jobs} jobs)")
