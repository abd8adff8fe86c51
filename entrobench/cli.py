"""Command line: what the Snakemake rules call (`python -m entrobench <command>`).

Rules stay thin (files in, files out, one call); everything they need is derived here from
the card, so a number in a table can be followed back to its record and its card.
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import re
import shutil
import sys
import time
import traceback
from pathlib import Path

from entrobench import record
from entrobench.card import CardError, load_card, load_cards
from entrobench.family import activate_plugins


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="entrobench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check", help="validate every card (or the ones given)")
    p.add_argument("cards", nargs="*", type=Path)
    p.add_argument("--configs", type=Path, default=Path("configs"))
    p.set_defaults(func=cmd_check)

    # the DAG's jobs (a card's builds and cells), then what reads a card's records
    for name, func, help_, extra in (
        ("build", cmd_build, "make one cached input (a card's family says what it is)", _job_args),
        ("run-cell", cmd_run_cell, "run one cell and write its record", _cell_args),
        ("track", cmd_track, "mirror a card's records into MLflow (one run per cell, no duplicates)", _out_arg),
        ("render", cmd_render, "aggregate a card's records into its table and claims", None),
        ("plots", cmd_plots, "draw a card's plots from its records", _out_arg),
    ):
        p = sub.add_parser(name, help=help_)
        _card_args(p)
        if extra:
            extra(p)
        p.set_defaults(func=func)

    # before a run on a cluster: what to download (on a login node), what it will cost
    p = sub.add_parser("stage", help="download, check and lay out under the data root what a card's scale needs (run on a node with internet)")
    p.add_argument("card", type=Path)
    p.add_argument("--scale", default="full")
    p.add_argument("--configs", type=Path, default=None, help="the cards' folder (default: the card's nearest configs/)")
    p.add_argument("--data-root", type=Path, default=None, help="default: $ENTROBENCH_DATA_ROOT, else ../shared/data")
    p.add_argument("--keep-downloads", action="store_true", help="keep archives and pickles once unpacked or converted")
    p.add_argument("--list", action="store_true", help="only list what the card's scale needs")
    p.set_defaults(func=cmd_stage)

    p = sub.add_parser("plan", help="the jobs a target submits, what they request and an estimate of their GPU-hours")
    p.add_argument("targets", nargs="+", help="results/<card>/<scale>/table.md, or a card (file or id) with --scale")
    p.add_argument("--scale", default="full", help="for targets that name a card only")
    p.add_argument("--configs", type=Path, default=Path("configs"))
    p.add_argument("--results", type=Path, default=Path("results"))
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("leaderboard", help="merge the cards that share a benchmark")
    p.add_argument("--benchmark", required=True)
    p.add_argument("--scale", required=True)
    p.add_argument("--configs", type=Path, default=Path("configs"))
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_leaderboard)

    args = parser.parse_args(argv)
    activate_plugins()
    try:
        return args.func(args) or 0
    except CardError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _card_args(p: argparse.ArgumentParser) -> None:
    """What every command that reads a card's records takes."""
    p.add_argument("--card", type=Path, required=True)
    p.add_argument("--scale", required=True)
    p.add_argument("--configs", type=Path, default=None, help="the cards' folder (default: the card's nearest configs/)")
    p.add_argument("--results", type=Path, default=Path("results"))


def _out_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True)


def _job_args(p: argparse.ArgumentParser) -> None:
    """What the DAG's jobs (builds and cells) take besides the card: data, threads, where to write."""
    p.add_argument("--data-root", type=Path, default=None, help="folder with the datasets (see README: Data)")
    p.add_argument("--threads", type=int, default=1)
    _out_arg(p)


def _cell_args(p: argparse.ArgumentParser) -> None:
    _job_args(p)
    p.add_argument("--cell", required=True, help="<dataset>/<setting>/<method>/seed<k>")


def _set_threads(n: int) -> None:
    """The job's threads, for torch and numpy's BLAS: through the environment, read when they are
    first imported (a family that needs neither never pays for importing torch)."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(max(1, n))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(max(1, n))


def cmd_check(args) -> int:
    cards = [load_card(p, args.configs) for p in args.cards] if args.cards else list(load_cards(args.configs).values())
    for card in cards:
        print(f"ok {card.path}: {len(card.spec.methods)} methods, scales {', '.join(card.spec.scales) or '-'}")
    return 0


def cmd_build(args) -> int:
    """Make one Build into a temporary folder beside its own, then rename it into place: a kill
    at any moment leaves no half-made folder under the name the DAG trusts. A skip (missing
    data or weights) is a result: the folder holds skipped.json with the reason."""
    from entrobench import checkpoint
    from entrobench.cells import all_builds
    from entrobench.family import BuildRun
    from entrobench.progress import Progress

    _set_threads(args.threads)
    card = load_card(args.card, args.configs)
    out = Path(args.out)
    build = next((b for b in all_builds(card.scale(args.scale)).values() if b.folder(args.results) == out), None)
    if build is None:
        print(f"error: {out}: no build of card {card.id} at scale {args.scale} is kept there under {args.results} (was the card edited?)", file=sys.stderr)
        return 2
    for stale in out.parent.glob(f".{out.name}.tmp*"):  # left by a killed attempt (its checkpoint is kept apart)
        shutil.rmtree(stale, ignore_errors=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    tmp.mkdir(parents=True)
    inputs = {name: dep.folder(args.results) for name, dep in build.inputs.items()}
    skipped = _skipped_input(inputs)
    try:
        if skipped:
            raise record.Skip(skipped)
        module, function = build.make.split(":")
        summary = getattr(importlib.import_module(module), function)(
            BuildRun(config=build.config, inputs=inputs, out=tmp, data_root=args.data_root, progress=Progress(f"{build.kind} {build.name}"),
                     threads=args.threads, checkpoint_path=checkpoint.beside(out)))
        (tmp / BUILD_FILE).write_text(json.dumps({"status": record.OK, "make": build.make, "config": build.config, "summary": summary}, indent=1, default=str) + "\n")
    except record.Skip as skip:
        for child in tmp.iterdir():  # a skip leaves only its reason
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        (tmp / SKIP_FILE).write_text(json.dumps({"status": record.SKIPPED, "reason": str(skip)}) + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # the checkpoint beside `out` stays: a rerun resumes from it
        raise
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    checkpoint.remove_beside(out)
    print(f"build {build.kind}/{build.name} -> {out}: {'skipped: ' + _skipped_input({'': out}) if (out / SKIP_FILE).is_file() else 'ok'}", file=sys.stderr)
    return 0


BUILD_FILE, SKIP_FILE = "build.json", "skipped.json"


def _skipped_input(inputs: dict[str, Path]) -> str:
    """The reason of the first input build that was skipped, or ""."""
    for folder in inputs.values():
        if (folder / SKIP_FILE).is_file():
            return json.loads((folder / SKIP_FILE).read_text())["reason"]
    return ""


def cmd_run_cell(args) -> int:
    """One cell. Its record is written for ok and skipped cells; a cell that raises writes no
    record and exits 1 with its reason as the last line of its log, keeping its checkpoint, so
    the DAG counts it as failed, retries it, and a rerun resumes it."""
    from entrobench import checkpoint
    from entrobench.cells import Cell, cell_builds, cell_config
    from entrobench.family import CellRun
    from entrobench.hashing import content_hash
    from entrobench.progress import Progress, card_line
    from methods import registry

    _set_threads(args.threads)
    card = load_card(args.card, args.configs)
    scaled = card.scale(args.scale)
    cell = Cell.from_key(card.id, args.scale, args.cell)
    config = cell_config(scaled, cell)
    base = {  # card-neutral: cards that agree on a config share this record (see cells.py)
        "card_version": card.spec.version,
        "family": card.spec.family,
        "scale": args.scale,
        "dataset": cell.dataset,
        "setting": cell.setting,
        "method_registry": config["method"],
        "seed": cell.seed,
        "config": config,
        "config_hash": content_hash(config),
        "data_root": str(args.data_root) if args.data_root else None,
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        **record.provenance(),
    }
    by_design = card.family.cell_skip(scaled, cell.dataset, scaled.setting(cell.setting))
    inputs = {} if by_design else {name: build.folder(args.results) for name, build in cell_builds(scaled, cell).items()}
    artifacts = Path(args.out).with_suffix(".files")
    start = time.time()
    try:
        skipped = by_design or _skipped_input(inputs)
        if skipped:
            raise record.Skip(skipped)
        run = CellRun(config=config, inputs=inputs, data_root=args.data_root, method_cls=registry.get(config["method"]),
                      progress=Progress(f"{card.id} {cell.key}"), dataset=card.dataset(cell.dataset),
                      checkpoint_path=checkpoint.beside(args.out), artifact_dir=artifacts, threads=args.threads)
        result = card.family.run_cell(run)
        _check_metrics(card, result.get("metrics", {}))
        outcome = {"status": record.OK, **result}
    except record.Skip as err:
        outcome = {"status": record.SKIPPED, "reason": str(err), "metrics": {}, "curves": {}}
    except Exception as err:  # noqa: BLE001 (any failure of the cell's code is reported, then the job fails)
        traceback.print_exc()
        print(f"{record.FAILED_PREFIX}{type(err).__name__}: {_one_line(err)}", file=sys.stderr)
        return 1
    outcome.update(wall_s=time.time() - start, peak_mem_mb=record.peak_mem_mb(), finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), cost=record.cost())
    record.write(args.out, {**base, **outcome})
    checkpoint.remove_beside(args.out)  # only once the record is safely written
    print(f"{card.id} {cell.key} -> {args.out}: {outcome['status']} {outcome.get('reason', '')} ({outcome['wall_s']:.1f}s)", file=sys.stderr)
    print(card_line(card, args.scale, args.results), flush=True)  # to the terminal: the job's stderr goes to its log
    return 0


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:300]


def _check_metrics(card, metrics: dict) -> None:
    """A NaN or infinite metric means the cell failed (lr inf gave 'ok' with NaN entropy), except
    NaN in a metric that may be undefined by design."""
    for name, value in metrics.items():
        value = float(value)
        if math.isinf(value) or (math.isnan(value) and not _may_be_undefined(card, name.split("/")[0])):
            raise ValueError(f"metric {name} is {value}: the run diverged or measured nothing")


def _may_be_undefined(card, name: str) -> bool:
    try:
        return card.metric(name).may_be_undefined
    except KeyError:
        return False


def cmd_track(args) -> int:
    from entrobench import aggregate, tracking

    card = load_card(args.card, args.configs)
    records = [r for r in aggregate.load_records(card, args.scale, args.results) if Path(r["path"]).is_file()]
    plots = sorted((args.results / card.id / args.scale / "plots").glob("*.png"))
    summary = tracking.track(card, args.scale, records, args.results, plots)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    print(f"track {card.id}/{args.scale}: {summary['created']} created, {summary['unchanged']} unchanged, {summary['replaced']} replaced", file=sys.stderr)
    return 0


def cmd_render(args) -> int:
    from entrobench import tables

    card = load_card(args.card, args.configs)
    paths = tables.render(card, args.scale, args.results, args.results / card.id / args.scale)
    print(f"render {card.id}/{args.scale}: {paths['md']}", file=sys.stderr)
    return 0


def cmd_plots(args) -> int:
    from entrobench import plots

    card = load_card(args.card, args.configs)
    written = plots.render(card, args.scale, args.results, args.out)
    print(f"plots {card.id}/{args.scale}: {len(written)} files in {args.out}", file=sys.stderr)
    return 0


def cmd_stage(args) -> int:
    """Fetch what the card's scale needs (its family says what: `Family.stage_needs`)."""
    from entrobench import stage
    from entrobench.data.sources import DATA_ROOT_ENV, default_data_root

    card = load_card(args.card, args.configs)
    names = card.family.stage_needs(card.scale(args.scale))
    if args.list or not names:
        for name in names:
            item = stage.CATALOG[name]
            print(f"{name}: {item.what}\n  -> <data root>/{item.home}")
        print(f"{card.id} at scale {args.scale}: {len(names)} item(s) to stage" + ("" if names else " (nothing to download)"))
        return 0
    root = args.data_root or default_data_root()
    if root is None:
        print(f"error: no data root: pass --data-root DIR or set {DATA_ROOT_ENV}", file=sys.stderr)
        return 2
    outcomes = stage.stage(names, root, keep_downloads=args.keep_downloads)
    missing = [o for o in outcomes if o.status not in ("ready", "staged")]
    print(f"{card.id} at scale {args.scale}: {len(outcomes) - len(missing)} of {len(outcomes)} item(s) in place under {root}", file=sys.stderr)
    return 1 if missing else 0


def cmd_plan(args) -> int:
    """Jobs, requested GPUs and hours, and estimated GPU-hours, per card and scale (`entrobench/plan.py`)."""
    from entrobench import plan

    scaled = [card.scale(scale) for card, scale in _plan_targets(args)]
    jobs = plan.card_jobs(scaled, args.results)
    print(plan.render(plan.plan(jobs, {s.card.id: plan.cost_model(s.card) for s in scaled})))
    return 0


def _plan_targets(args) -> list:
    """(card, scale) for each target: a table path, a card file or a card id."""
    cards, found = None, []
    for target in args.targets:
        table = re.fullmatch(r"(?:.*/)?results/([^/]+)/([^/]+)/table\.(?:md|tex|csv)", target)
        if Path(target).suffix == ".yaml":
            found.append((load_card(Path(target), args.configs if args.configs.is_dir() else None), args.scale))
            continue
        cards = cards or load_cards(args.configs)
        card_id, scale = table.groups() if table else (target, args.scale)
        if card_id not in cards:
            raise CardError(f"{target}: no card {card_id!r} in {args.configs} (cards: {', '.join(cards)})")
        found.append((cards[card_id], scale))
    return found


def cmd_leaderboard(args) -> int:
    from entrobench import leaderboard

    cards = [c for c in load_cards(args.configs).values() if c.spec.benchmark == args.benchmark]
    leaderboard.render(args.benchmark, cards, args.scale, args.results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
