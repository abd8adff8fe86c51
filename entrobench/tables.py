"""A card's table at one scale: Markdown, LaTeX and CSV, with claims, protocol and skipped cells.

Everything here is computed from the records; paper numbers come from the card's `reported`
list, with their source, and are shown only at full scale (a smoke number is never the paper's).
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pandas as pd

from entrobench import aggregate, record
from entrobench.card import Card, ClaimEntry, Reported
from entrobench.cells import invariant_to
from entrobench.claims import HOLDS, NOT_TESTED, Verdict, judge

PAPER_SCALE = "full"


@dataclasses.dataclass
class Block:
    """One (dataset, setting) pair: a main table and a table of extra metrics."""

    dataset: str
    setting: str
    main: pd.DataFrame  # rows = method labels, columns = per-domain columns + mean; text cells
    main_numeric: pd.DataFrame  # same layout, mean and ci95 columns for the CSV
    extra: pd.DataFrame


def render(card: Card, scale: str, results: Path, out_dir: Path) -> dict[str, Path]:
    records = aggregate.load_records(card, scale, results)
    df = aggregate.frame(records)
    if card.spec.table.cost:
        df = pd.concat([df, _cost_rows(records, card.spec.table.cost)], ignore_index=True)
    summary = aggregate.summarize(df)
    scaled = card.scale(scale)
    blocks = [_block(card, scale, summary, df, dataset, setting.name) for dataset in scaled.datasets for setting in scaled.settings]
    verdicts = _claims(card, scale, summary, df, scaled)

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"md": out_dir / "table.md", "tex": out_dir / "table.tex", "csv": out_dir / "table.csv"}
    paths["md"].write_text(_markdown(card, scale, blocks, verdicts, df, records))
    paths["tex"].write_text(_latex(card, scale, blocks))
    pd.concat([b.main_numeric.assign(dataset=b.dataset, setting=b.setting) for b in blocks]).to_csv(paths["csv"], index_label="method")
    return paths


def _block(card: Card, scale: str, summary: pd.DataFrame, df: pd.DataFrame, dataset: str, setting: str) -> Block:
    table = card.spec.table
    here = summary[(summary["dataset"] == dataset) & (summary["setting"] == setting)].set_index(["method", "metric"])
    cells = df[(df["dataset"] == dataset) & (df["setting"] == setting)]
    if table.layout == "metrics":  # column -> (metric key in the records, metric reported by the paper, paper column)
        columns = {f"{m} ({card.metric(m).unit})": (m, m, "mean") for m in [table.metric, *table.extra_metrics]}
        extra_metrics = []
    else:
        domains = card.family.columns(card.scale(scale).protocol)
        columns = {col: (f"{table.metric}/{col}", table.metric, col) for col in domains} | {"mean": (table.metric, table.metric, "mean")}
        extra_metrics = table.extra_metrics
    if table.cost:
        columns[f"cost ({COST_UNITS[table.cost]})"] = (f"cost/{table.cost}", f"cost/{table.cost}", "mean")
    text, numeric, extra = {}, {}, {}
    for entry in card.scale(scale).methods:
        label = entry.label or entry.name
        status = _row_status(cells[cells["method"] == entry.name])
        row, nrow = {}, {}
        for col, (key, metric, paper_col) in columns.items():
            paper = _reported(card, scale, entry.name, metric, dataset, setting, paper_col)
            if (entry.name, key) in here.index:
                mean, ci, n = here.loc[(entry.name, key), ["mean", "ci95", "n"]]
                row[col] = _with_paper(_fmt(mean, ci, _counted(card, metric)), mean, paper)
                name = key if table.layout == "metrics" else col
                nrow[f"{name}_mean"], nrow[f"{name}_ci95"], nrow[f"{name}_n"] = mean, ci, n
            else:  # the paper's number stays visible where ours could not be had
                row[col] = status if paper is None else f"{status} [paper {paper.value:g}]"
        text[label], numeric[label] = row, nrow
        extra[label] = {
            f"{m} ({card.metric(m).unit})": _fmt(*here.loc[(entry.name, m), ["mean", "ci95"]], _counted(card, m)) if (entry.name, m) in here.index else status
            for m in extra_metrics
        }
    return Block(dataset, setting, pd.DataFrame.from_dict(text, orient="index"), pd.DataFrame.from_dict(numeric, orient="index"), pd.DataFrame.from_dict(extra, orient="index"))


COUNTED_UNITS = ("count", "steps")
COST_UNITS = {"cpu_s": "CPU-s per cell", "gpu_h": "GPU-h per cell"}


def _cost_rows(records: list[dict], cost: str) -> pd.DataFrame:
    """Each cell's cost as a metric row: CPU-seconds used, or GPU-hours held (GPUs x wall time)."""
    rows = []
    for rec in records:
        if "cost" not in rec:  # missing cells, and records written before costs were recorded
            continue
        value = rec["cost"]["cpu_s"] if cost == "cpu_s" else rec["cost"]["gpus"] * rec["wall_s"] / 3600
        rows.append({**{k: rec[k] for k in (*aggregate.KEYS, "seed", "status")}, "reason": rec.get("reason", ""), "metric": f"cost/{cost}", "value": value})
    return pd.DataFrame(rows, columns=[*aggregate.KEYS, "seed", "status", "reason", "metric", "value"])


def _row_status(cells: pd.DataFrame) -> str:
    states = sorted(set(cells["status"]) - {record.OK})
    return "/".join(states) if states else "n/a"


def _fmt(mean: float, ci: float, counted: bool = False) -> str:
    """Two decimals, or two significant figures where that shows more (a relative error of
    0.0067 is not "0.01", nor 5e-4 "0.00"); the CI to the same decimals. A `counted` metric whose
    mean and CI are whole numbers (every seed took 300 steps) shows none: "300 ± 0"."""
    if math.isnan(mean):  # a metric that can be undefined, e.g. a threshold never crossed: its description says
        return "—"
    decimals = 2 if mean == 0 or abs(mean) >= 0.1 else 1 - math.floor(math.log10(abs(mean)))
    if counted and float(mean).is_integer() and (math.isnan(ci) or float(ci).is_integer()):
        decimals = 0
    if math.isnan(ci):
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {ci:.{decimals}f}"


def _counted(card: Card, metric: str) -> bool:
    """Whether the metric counts things (steps, rounds, parameters) rather than measuring them."""
    try:
        return card.metric(metric).unit in COUNTED_UNITS
    except KeyError:  # a column that is not a metric of the family, e.g. a cost
        return False


def _reported(card: Card, scale: str, method: str, metric: str, dataset: str, setting: str, column: str) -> Reported | None:
    if scale != PAPER_SCALE:
        return None
    for rep in card.spec.reported:
        if (rep.method, rep.metric, rep.column) == (method, metric, column) and rep.dataset in ("", dataset) and rep.setting in ("", setting):
            return rep
    return None


def _with_paper(text: str, mean: float, paper: Reported | None) -> str:
    if paper is None:
        return text
    return f"{text} [paper {paper.value:g}, Δ {mean - paper.value:+.2f}]"


# --- claims --------------------------------------------------------------------------------------


def _claims(card: Card, scale: str, summary: pd.DataFrame, df: pd.DataFrame, scaled) -> list[tuple[ClaimEntry, str, Verdict]]:
    """Each claim on each (dataset, setting) it names: the verdict on the means over seeds, and
    on how many seeds it holds on its own (a verdict that flips between seeds is noise)."""
    out = []
    ok = df[(df["status"] == record.OK) & df["metric"].notna()]
    for entry, claim in card.claims:
        for dataset in [entry.dataset] if entry.dataset else scaled.datasets:
            for setting in [entry.setting] if entry.setting else [s.name for s in scaled.settings]:
                where = f"{dataset} · {setting}"
                if scale not in entry.scales:
                    out.append((entry, where, Verdict(NOT_TESTED, detail=f"claimed for {', '.join(entry.scales)}")))
                    continue
                here = summary[summary["dataset"] == dataset]
                values = _claim_values(here, setting, "mean")
                cis = _claim_values(here, setting, "ci95")
                verdict = judge(claim, values)
                if verdict.lhs is not None:
                    behind = ", ".join(f"{m}.{k} = {_fmt(values[(m, k)], cis[(m, k)])}" for m, k in dict.fromkeys(claim.references))
                    per_seed = _per_seed(claim, ok[ok["dataset"] == dataset], setting)
                    verdict = dataclasses.replace(verdict, detail=f"{verdict.detail}; {per_seed} ({behind})")
                out.append((entry, where, verdict))
    return out


def _claim_values(rows: pd.DataFrame, setting: str, column: str) -> dict[tuple[str, str], float]:
    """(method, metric) in the claim's own setting, and (method, metric@setting) in every setting
    of the dataset (claims that compare settings, see entrobench/claims.py)."""
    values = {(r.method, f"{r.metric}@{r.setting}"): getattr(r, column) for r in rows.itertuples()}
    values.update({(r.method, r.metric): getattr(r, column) for r in rows.itertuples() if r.setting == setting})
    return values


def _per_seed(claim, cells: pd.DataFrame, setting: str) -> str:
    verdicts = []
    for _, seed_cells in cells.groupby("seed"):
        values = _claim_values(seed_cells.rename(columns={"value": "mean"}), setting, "mean")
        verdicts.append(judge(claim, values).status)
    return f"holds on {verdicts.count(HOLDS)} of {len(verdicts)} seeds"


# --- Markdown ------------------------------------------------------------------------------------


def _markdown(card: Card, scale: str, blocks: list[Block], verdicts, df: pd.DataFrame, records: list[dict]) -> str:
    spec = card.spec
    scaled = card.scale(scale)
    lines = [
        f"# {spec.title}",
        "",
        f"Card `{card.id}` ({card.path}), arXiv [{spec.arxiv}](https://arxiv.org/abs/{spec.arxiv}), family `{spec.family}`, "
        f"scale **{scale}**, {len(scaled.seeds)} seeds ({', '.join(map(str, scaled.seeds))}).",
        "",
        _cells_line(card),
    ]
    if scale == PAPER_SCALE:
        lines.append("Where the paper reports a value it follows in brackets with our difference; sources are listed below.")
    else:
        lines.append(f"This is the `{scale}` scale: numbers are ours on a smaller protocol (see Protocol) and are not comparable to the paper's.")
    for dataset in scaled.datasets if spec.table.pivot else []:
        lines += ["", f"## {dataset} · all settings", "", _pivot(card, scaled, blocks, dataset).to_markdown(disable_numparse=True), ""]
    for block in blocks:
        setting = scaled.setting(block.setting)
        lines += ["", f"## {block.dataset} · {block.setting}", "", f"_{_describe_setting(card, setting)}_", "", block.main.to_markdown(disable_numparse=True), ""]
        if not block.extra.empty and len(block.extra.columns):
            lines += ["Mean over domains:", "", block.extra.to_markdown(disable_numparse=True), ""]
    lines += ["", "## Claims", "", "| claim | where | verdict | numbers |", "| --- | --- | --- | --- |"]
    for entry, where, verdict in verdicts:
        lines.append(f"| `{entry.text}`{' — ' + entry.note if entry.note else ''} | {where} | **{verdict.status}** | {verdict.detail} |")
    lines += ["", "## Protocol", ""] + [f"- {line}" for line in _protocol_differences(card, scale)]
    if scale == PAPER_SCALE and spec.reported:
        lines += ["", "## Paper numbers", "", "| method | metric | dataset | setting | column | value | source |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for rep in spec.reported:
            lines.append(f"| {rep.method} | {rep.metric} ({rep.unit or card.metric(rep.metric).unit}) | {rep.dataset or '-'} | {rep.setting or 'all'} | {rep.column} | {rep.value:g} | {rep.source} |")
    not_ok = aggregate.statuses(df)
    if len(not_ok):
        lines += ["", "## Cells that did not run", "", not_ok.to_markdown(index=False)]
    shas = sorted({r.get("git_sha", "?") for r in records if r.get("git_sha")})
    lines += [
        "",
        "---",
        f"Generated by `python -m entrobench render` from {len({r['path'] for r in records})} records under `results/cells/{scale}/` "
        f"(code {', '.join(s[:12] for s in shas) or 'n/a'}). MLflow experiment `{card.id}`. Plots: `plots/`.",
        "",
    ]
    return "\n".join(lines)


def _pivot(card: Card, scaled, blocks: list[Block], dataset: str) -> pd.DataFrame:
    """The card's `table.pivot` metrics across settings: columns = setting x metric, from the blocks."""
    columns = {}
    for block in (b for b in blocks if b.dataset == dataset):
        for metric in card.spec.table.pivot:
            col = f"{metric} ({card.metric(metric).unit})"
            table = block.main if col in block.main.columns else block.extra
            if col in table.columns:
                columns[f"{block.setting} · {metric}"] = table[col]
    return pd.DataFrame(columns)


def _cells_line(card: Card) -> str:
    table = card.spec.table
    if table.layout == "metrics":
        shown = "".join(f"\n- `{m}` ({card.metric(m).unit}, {card.metric(m).reading}): {card.metric(m).description}" for m in [table.metric, *table.extra_metrics])
        return f"Cells: mean ± 95% CI (Student t) over seeds. Columns:\n{shown}\n"
    metric = card.metric(table.metric)
    return f"Cells: {table.metric} ({metric.unit}, {metric.reading}), mean ± 95% CI (Student t) over seeds."


def _describe_setting(card: Card, setting) -> str:
    """The setting as its cells see it (a field left unset may be left out: Family.setting_config)."""
    return ", ".join(f"{k} {v}" for k, v in card.family.setting_config(setting).items() if k != "name")


def _protocol_differences(card: Card, scale: str) -> list[str]:
    """Where this scale's run differs from the paper's protocol (the card's full scale, when it
    has one: a card of the suite's own, with no paper setting, compares with nothing)."""
    ours = card.scale(scale)
    paper = card.scale(PAPER_SCALE) if PAPER_SCALE in card.spec.scales else None
    out = []
    if scale == PAPER_SCALE:
        out.append("Runs the paper's protocol as stated in the card's `full` scale.")
    elif paper is None:
        out.append("The card has no `full` scale (no paper setting to compare with).")
    else:
        if ours.datasets != paper.datasets:
            out.append(f"datasets: {', '.join(ours.datasets)} (paper: {', '.join(paper.datasets)})")
        for f in dataclasses.fields(ours.protocol):
            a, b = getattr(ours.protocol, f.name), getattr(paper.protocol, f.name)
            if a != b:
                out.append(f"{f.name}: {_short(a)} (paper: {_short(b)})")
        if ours.seeds != paper.seeds:
            out.append(f"seeds: {len(ours.seeds)} (paper protocol: {len(paper.seeds)})")
        if [m.name for m in ours.methods] != [m.name for m in paper.methods]:
            out.append(f"methods: {', '.join(m.name for m in ours.methods)} (paper: {', '.join(m.name for m in paper.methods)})")
        if [s.name for s in ours.settings] != [s.name for s in paper.settings]:
            out.append(f"settings: {', '.join(s.name for s in ours.settings)} (paper: {', '.join(s.name for s in paper.settings)})")
        for entry in ours.methods:  # method parameters this scale overrides (scales.<scale>.method_params)
            a, b = ours.method_config(entry.name)[1], paper.method_config(entry.name)[1]
            changed = [f"{k} {a[k]} (paper: {b[k]})" for k in a if a[k] != b[k]]
            if changed:
                out.append(f"{entry.label or entry.name} parameters: {', '.join(changed)}")
    for entry in ours.methods:
        ignored = invariant_to(ours.method_config(entry.name)[0])
        if ignored:
            out.append(f"{entry.label or entry.name} cannot depend on {', '.join(ignored)}: one run fills every such cell of its row (the ± is then 0)")
    out += card.spec.notes
    return out or ["Same protocol as the paper."]


def _short(value) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return text if len(text) < 120 else text[:117] + "..."


# --- LaTeX ---------------------------------------------------------------------------------------


def _latex(card: Card, scale: str, blocks: list[Block]) -> str:
    parts = [f"% {card.spec.title} ({card.id}, scale {scale}); generated from results, do not edit"]
    for block in blocks:
        table = block.main.rename(columns=lambda c: c.replace("_", r"\_")).map(lambda s: s.replace("±", r"$\pm$").replace("Δ", r"$\Delta$"))
        parts.append(
            table.to_latex(
                caption=f"{card.spec.table.metric.replace('_', ' ')} on {block.dataset.replace('_', '-')}, {block.setting.replace('_', ' ')} ({scale} scale)",
                label=f"tab:{card.id}:{block.dataset}:{block.setting}".replace("_", "-"),
                escape=False,
            )
        )
    return "\n".join(parts)
