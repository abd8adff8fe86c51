# One cell = one method on one dataset, setting and seed. Its record is named by its content
# (method and config hash, see entrobench/cells.py): cards that agree on a cell share one job,
# and changing a method parameter in a card gives new paths for exactly the cells that use it.
# The method's file and the family's code the cell runs are inputs, so editing them reruns their
# cells. A cell that fails writes no record: the job fails, Snakemake retries it (profiles'
# `retries`), and its log's last line is the reason the table shows.
import re  # noqa: E402

from entrobench.cells import cell_builds  # noqa: E402
from methods import registry  # noqa: E402


def _cell_owners():
    """Record path -> (card, scale, cell) for every card at every scale: the first card to ask
    for a record runs it; and its priority, the highest of the cards that read it."""
    owners, priority = {}, {}
    for card in CARDS.values():
        for scale in card.spec.scales:
            for cell in cells_of(card.id, scale):
                path = str(cell.record_path())
                owners.setdefault(path, (card, scale, cell))
                priority[path] = max(priority.get(path, -(10**6)), scaled(card.id, scale).priority)
    return owners, priority


CELL_OWNERS, CELL_PRIORITY = _cell_owners()


def _owner(wildcards):
    path = f"results/cells/{wildcards.scale}/{wildcards.dataset}/{wildcards.setting}/{wildcards.run}/seed{wildcards.seed}.json"
    if path not in CELL_OWNERS:
        raise ValueError(f"no card asks for {path}")
    return CELL_OWNERS[path]


def cell_inputs(wildcards):
    card, scale, cell = _owner(wildcards)
    s = scaled(card.id, scale)
    inputs = {name: build.path for name, build in cell_builds(s, cell).items()}
    method_file = registry.source_file(cell.method_registry)
    inputs["method_code"] = [str(f) for f in (method_file, method_file.with_name("base.py")) if f.is_file()]
    inputs["family_code"] = [str(f) for f in card.family.cell_sources(s, cell.dataset, s.setting(cell.setting))]
    return inputs


def _cell_data_state(wildcards):
    card, scale, cell = _owner(wildcards)
    s = scaled(card.id, scale)
    return the_data_state(card.family.cell_data_files(s, cell.dataset, s.setting(cell.setting)))


rule run_cell:
    input:
        unpack(cell_inputs),
    output:
        "results/cells/{scale}/{dataset}/{setting}/{run}/seed{seed}.json",
    log:
        "results/cells/{scale}/{dataset}/{setting}/{run}/seed{seed}.log",
    params:
        card=lambda wc: str(_owner(wc)[0].path),
        cell=lambda wc: _owner(wc)[2].key,
        data_state=_cell_data_state,
    threads: job_threads(_owner)
    priority: lambda wc: CELL_PRIORITY[str(_owner(wc)[2].record_path())]
    resources:
        **job_resources(_owner),
    shell:
        "{PY} -m entrobench run-cell --card {params.card:q} {CONFIGS_ARG} --scale {wildcards.scale:q} --cell {params.cell:q}"
        " {DATA_ROOT_ARG} --threads {threads} --out {output:q} 2> {log:q}"


# Cells skipped by design (their family's `cell_skip`: the paper's setting needs what the suite
# does not have yet) only write their reason: they run here, on the submitting node, ask a
# cluster for nothing and read no build. The rule takes exactly their record paths (the run
# wildcard is limited to their names); every other cell is run_cell's.
def _skipped_runs():
    runs = set()
    for path, (card, scale, cell) in CELL_OWNERS.items():
        s = scaled(card.id, scale)
        if card.family.cell_skip(s, cell.dataset, s.setting(cell.setting)):
            runs.add(re.escape(cell.run_name))
    return "|".join(sorted(runs)) or "(?!)"  # (?!) matches nothing


SKIPPED_RUNS = _skipped_runs()


rule skip_cell:
    input:
        family_code=lambda wc: cell_inputs(wc)["family_code"],
    output:
        "results/cells/{scale}/{dataset}/{setting}/{run," + SKIPPED_RUNS + "}/seed{seed}.json",
    log:
        "results/cells/{scale}/{dataset}/{setting}/{run}/seed{seed}.log",
    params:
        card=lambda wc: str(_owner(wc)[0].path),
        cell=lambda wc: _owner(wc)[2].key,
    shell:
        "{PY} -m entrobench run-cell --card {params.card:q} {CONFIGS_ARG} --scale {wildcards.scale:q} --cell {params.cell:q}"
        " {DATA_ROOT_ARG} --out {output:q} 2> {log:q}"


localrules:
    skip_cell,


ruleorder: skip_cell > run_cell
