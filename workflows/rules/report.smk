# From records to what people read: plots, the MLflow mirror, the table, leaderboards.
# Order: plots -> MLflow (plots are logged as artifacts) -> table, so a table target brings all.
# The card and the code that draws or renders are inputs too: editing a claim, a note or a plot
# redraws from the records already there, without rerunning a cell.
from entrobench.family import folder as family_folder  # noqa: E402
from entrobench.hashing import content_hash  # noqa: E402


def _plot_code(wildcards):
    own = family_folder(CARDS[wildcards.card].family) / "plots.py"
    return [REPO / "entrobench" / "plots.py", *([own] if own.is_file() else [])]


# Above any card's cells: a card whose records are all there gets its plots, MLflow runs and table
# at once (seconds of work), not after every cell of the cards ranked above it.
REPORT_PRIORITY = 10**6

TABLE_CODE = [REPO / "entrobench" / name for name in ("tables.py", "claims.py", "aggregate.py", "metrics.py")]


rule render_plots:
    input:
        records_of,
        card=card_path,
        code=_plot_code,
    output:
        report(directory("results/{card}/{scale}/plots"), patterns=["{name}.png"], category="{card}", subcategory="{scale}"),
    log:
        "results/{card}/{scale}/logs/plots.log",
    params:
        card=card_path,
    priority: REPORT_PRIORITY
    shell:
        "{PY} -m entrobench plots --card {params.card:q} {CONFIGS_ARG} --scale {wildcards.scale:q} --out {output:q} 2> {log:q}"


rule track_card:
    input:
        records_of,
        plots="results/{card}/{scale}/plots",
    output:
        "results/{card}/{scale}/mlflow.json",
    log:
        "results/{card}/{scale}/logs/mlflow.log",
    params:
        card=card_path,
    priority: REPORT_PRIORITY
    shell:
        "{PY} -m entrobench track --card {params.card:q} {CONFIGS_ARG} --scale {wildcards.scale:q} --out {output:q} 2> {log:q}"


rule render_table:
    input:
        records_of,
        tracked="results/{card}/{scale}/mlflow.json",
        card=card_path,
        code=TABLE_CODE,
    output:
        md=report("results/{card}/{scale}/table.md", category="{card}", subcategory="{scale}"),
        tex="results/{card}/{scale}/table.tex",
        csv="results/{card}/{scale}/table.csv",
    log:
        "results/{card}/{scale}/logs/table.log",
    params:
        card=card_path,
        # Snakemake keeps a table whose input record was deleted (it treats missing inputs as
        # removed intermediates); which records exist is a parameter, so a deleted one is rebuilt
        records_present=lambda wc: content_hash([Path(r).is_file() for r in records_of(wc)]),
    priority: REPORT_PRIORITY
    shell:
        "{PY} -m entrobench render --card {params.card:q} {CONFIGS_ARG} --scale {wildcards.scale:q} 2> {log:q}"


rule render_leaderboard:
    input:
        lambda wc: [f"results/{c.id}/{wc.scale}/table.md" for c in CARDS.values() if c.spec.benchmark == wc.benchmark and wc.scale in c.spec.scales],
    output:
        report("results/leaderboards/{benchmark}/{scale}.md", category="leaderboards"),
    log:
        "results/leaderboards/logs/{benchmark}-{scale}.log",
    priority: REPORT_PRIORITY
    shell:
        "{PY} -m entrobench leaderboard --benchmark {wildcards.benchmark:q} --scale {wildcards.scale:q} --configs {CONFIGS:q} --out {output:q} 2> {log:q}"


# Cheap, and they write the MLflow store and the tables: on a cluster they run on the submitting
# node, the one place that can reach a loopback MLflow server and hold the store's file lock.
localrules:
    render_plots,
    track_card,
    render_table,
    render_leaderboard,


def partial_tables(targets):
    """After a failed run: the tables among `targets` (all smoke tables when none was named)
    rendered from the records that exist, each missing or failed cell named with its reason.
    The DAG does not trust them: the next run makes the missing records and renders again."""
    import re
    import subprocess

    wanted = set()
    for target in targets or targets_for_scale(config.get("scale", "smoke")):
        found = re.fullmatch(r"results/([^/]+)/([^/]+)/table\.md", str(target))
        if found and found.group(1) in CARDS:
            wanted.add(found.groups())
    for card_id, scale in sorted(wanted):
        subprocess.run([sys.executable, "-m", "entrobench", "render", "--card", str(CARDS[card_id].path), "--configs", str(CONFIGS), "--scale", scale], check=False)
        table = Path("results") / card_id / scale / "table.md"
        if table.is_file():  # dated 1970: older than any record, so the next run renders it again
            for name in ("table.md", "table.tex", "table.csv"):
                os.utime(table.with_name(name), (1, 1))  # not 0: Snakemake reads a zero time as "unknown"
            sys.stderr.write(f"entrobench: wrote a partial table {table} from the records that exist (see 'Cells that did not run')\n")


def dry_run() -> bool:
    """Whether this is `snakemake -n` (Snakemake tells a Snakefile only once the DAG is built, after
    its hooks: read from the command line)."""
    import re

    return any(a in ("--dry-run", "--dryrun") or re.fullmatch(r"-[A-Za-z]*n[A-Za-z]*", a) for a in sys.argv[1:])


def print_plan(targets):
    """At the top of a dry run: the cost plan of the tables asked for (all of the scale's when none
    was named): jobs, what they request and estimated GPU-hours (`python -m entrobench plan`)."""
    import re

    from entrobench import plan

    wanted = []
    for target in targets or targets_for_scale(config.get("scale", "smoke")):
        found = re.fullmatch(r"results/([^/]+)/([^/]+)/table\.(?:md|tex|csv)", str(target))
        if found and found.group(1) in CARDS and found.groups() not in wanted:
            wanted.append(found.groups())
    if wanted:
        views = [scaled(card_id, scale) for card_id, scale in wanted]
        jobs = plan.card_jobs(views, "results", CLUSTER_OVERRIDES)
        print(plan.render(plan.plan(jobs, {v.card.id: plan.cost_model(v.card) for v in views})) + "\n", flush=True)
