# One cell = one method on one dataset, setting and seed. The method's file is an input and the
# cell's config hash a param, so editing a method, or one of its parameters in a card, reruns
# exactly the cells that use it.
from methods import registry


def cell_of(wildcards):
    return Cell(wildcards.card, wildcards.scale, wildcards.dataset, wildcards.setting, wildcards.method, int(wildcards.seed))


def cell_inputs(wildcards):
    s = scaled(wildcards.card, wildcards.scale)
    card = s.card
    entry = card.method(wildcards.method)
    inputs = card.family.cell_inputs(s.protocol, s.setting(wildcards.setting), wildcards.dataset)
    inputs["method_code"] = str(registry.source_file(entry.method or f"{card.spec.family}/{entry.name}"))
    inputs["protocol_code"] = str(REPO / "entrobench" / "protocols" / card.spec.family / "run.py")
    return inputs


def cell_input_args(wildcards, input):
    code = {"method_code", "protocol_code"}
    return " ".join(f"--input {name}={shlex.quote(path)}" for name, path in input.items() if name not in code)


rule run_cell:
    input:
        unpack(cell_inputs),
    output:
        "results/{card}/{scale}/cells/{dataset}/{setting}/{method}/seed{seed}.json",
    log:
        "results/{card}/{scale}/logs/{dataset}/{setting}/{method}/seed{seed}.log",
    params:
        card=card_path,
        config_hash=lambda wc: config_hash(scaled(wc.card, wc.scale), cell_of(wc)),
        inputs=cell_input_args,
    threads: 1
    resources:
        mem_mb=lambda wc: scaled(wc.card, wc.scale).resources.get("mem_mb", 2000),
        runtime=lambda wc: scaled(wc.card, wc.scale).resources.get("runtime", 30),
    shell:
        "{PY} -m entrobench run-cell --card {params.card} --scale {wildcards.scale}"
        " --cell {wildcards.dataset}/{wildcards.setting}/{wildcards.method}/seed{wildcards.seed}"
        " {DATA_ROOT_ARG} {params.inputs} --threads {threads} --out {output} 2> {log}"
