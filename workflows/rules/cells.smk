# One cell = one method on one dataset, setting and seed. Its record is named by its content
# (method and config hash, see entrobench/cells.py): cards that agree on a cell share one job,
# and changing a method parameter in a card gives new paths for exactly the cells that use it.
# The method's file and the protocol's code are inputs, so editing them reruns their cells.
from methods import registry


def _cell_owners():
    """Record path -> (card, scale, cell) for every card at every scale: the first card to ask
    for a record runs it."""
    owners = {}
    for card in CARDS.values():
        for scale in card.spec.scales:
            for cell in cells_of(card.id, scale):
                owners.setdefault(str(cell.record_path()), (card, scale, cell))
    return owners


CELL_OWNERS = _cell_owners()


def _owner(wildcards):
    path = f"results/cells/{wildcards.scale}/{wildcards.dataset}/{wildcards.setting}/{wildcards.run}/seed{wildcards.seed}.json"
    if path not in CELL_OWNERS:
        raise ValueError(f"no card asks for {path}")
    return CELL_OWNERS[path]


def cell_inputs(wildcards):
    card, scale, cell = _owner(wildcards)
    s = scaled(card.id, scale)
    inputs = card.family.cell_inputs(s.protocol, s.setting(cell.setting), cell.dataset, cell.seed)
    method_file = registry.source_file(cell.method_registry)
    inputs["method_code"] = [str(f) for f in (method_file, method_file.with_name("base.py")) if f.is_file()]
    # the family's code a cell runs (its plots only draw records)
    inputs["protocol_code"] = [str(f) for f in sorted((REPO / "entrobench" / "protocols" / card.spec.family).glob("*.py")) if f.name != "plots.py"]
    return inputs


def cell_input_args(wildcards, input):
    code = {"method_code", "protocol_code"}
    return " ".join(f"--input {name}={shlex.quote(path)}" for name, path in input.items() if name not in code)


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
        inputs=cell_input_args,
    threads: 1
    resources:
        **job_resources(_owner),
    shell:
        "{PY} -m entrobench run-cell --card {params.card} --scale {wildcards.scale} --cell {params.cell}"
        " {DATA_ROOT_ARG} {params.inputs} --threads {threads} --out {output} 2> {log}"
