# From records to what people read: plots, the MLflow mirror, the table, leaderboards.
# Order: plots -> MLflow (plots are logged as artifacts) -> table, so a table target brings all.
# The card and the code that draws or renders are inputs too: editing a claim, a note or a plot
# redraws from the records already there, without rerunning a cell.


def _plot_code(wildcards):
    return [REPO / "entrobench" / "plots.py", REPO / "entrobench" / "protocols" / CARDS[wildcards.card].spec.family / "plots.py"]


TABLE_CODE = [REPO / "entrobench" / name for name in ("tables.py", "claims.py", "aggregate.py", "metrics.py")]


rule render_plots:
    input:
        records_of,
        card=card_path,
        code=_plot_code,
    output:
        report(directory("results/{card}/{scale}/plots"), patterns=["{name}.png"], category="{card}", subcategory="{scale}"),
    params:
        card=card_path,
    shell:
        "{PY} -m entrobench plots --card {params.card} --scale {wildcards.scale} --out {output}"


rule track_card:
    input:
        records_of,
        plots="results/{card}/{scale}/plots",
    output:
        "results/{card}/{scale}/mlflow.json",
    params:
        card=card_path,
    shell:
        "{PY} -m entrobench track --card {params.card} --scale {wildcards.scale} --out {output}"


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
    params:
        card=card_path,
    shell:
        "{PY} -m entrobench render --card {params.card} --scale {wildcards.scale}"


rule render_leaderboard:
    input:
        lambda wc: [f"results/{c.id}/{wc.scale}/table.md" for c in CARDS.values() if c.spec.benchmark == wc.benchmark and wc.scale in c.spec.scales],
    output:
        report("results/leaderboards/{benchmark}/{scale}.md", category="leaderboards"),
    params:
        configs=CONFIGS,
    shell:
        "{PY} -m entrobench leaderboard --benchmark {wildcards.benchmark} --scale {wildcards.scale} --configs {params.configs} --out {output}"


# Cheap, and they write the MLflow store and the tables: on a cluster they run on the submitting
# node, the one place that can reach a loopback MLflow server and hold the store's file lock.
localrules:
    render_plots,
    track_card,
    render_table,
    render_leaderboard,
