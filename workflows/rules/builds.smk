# Cached inputs ("builds"): what a family's cells read that is made once and shared by every
# method, seed, card and scale that agree on it (clean data, a source model, a warm-up checkpoint,
# a converted model, task files). Each is a folder results/_cache/<owner>/<kind>/<name>-<hash>;
# its family says how it is made (entrobench/family.py: Build). One rule makes them all.


def _all_builds():
    """Build folder -> (card, scale, Build): the first card to ask for a build runs it; and its
    priority, the highest of the cards that read it (a cheap card's table waits for nothing)."""
    builds, priority = {}, {}
    for card in CARDS.values():
        for scale in card.spec.scales:
            for path, build in all_builds(scaled(card.id, scale)).items():
                builds.setdefault(path, (card, scale, build))
                priority[path] = max(priority.get(path, -(10**6)), scaled(card.id, scale).priority)
    return builds, priority


BUILDS, BUILD_PRIORITY = _all_builds()


def _build_of(wildcards):
    path = f"results/_cache/{wildcards.owner}/{wildcards.kind}/{wildcards.build}"
    if path not in BUILDS:
        raise ValueError(f"no card asks for {path}")
    return BUILDS[path]


def build_inputs(wildcards):
    """The builds it reads and the files whose edit remakes it (its code, task files)."""
    build = _build_of(wildcards)[2]
    return {**{name: dep.path for name, dep in build.inputs.items()}, "sources": list(build.sources)}


rule build:
    input:
        unpack(build_inputs),
    output:
        directory("results/_cache/{owner}/{kind}/{build}"),
    log:
        "results/_cache/{owner}/logs/{kind}-{build}.log",
    params:
        card=lambda wc: str(_build_of(wc)[0].path),
        scale=lambda wc: _build_of(wc)[1],
        # data that appears later (or changes) under the data root remakes a build skipped without it
        data_state=lambda wc: the_data_state(_build_of(wc)[2].data_files),
    threads: job_threads(_build_of, heavy=lambda wc: _build_of(wc)[2].heavy)
    priority: lambda wc: BUILD_PRIORITY[_build_of(wc)[2].path]
    resources:
        **job_resources(_build_of, heavy=lambda wc: _build_of(wc)[2].heavy),
    shell:
        "{PY} -m entrobench build --card {params.card:q} {CONFIGS_ARG} --scale {params.scale:q}"
        " {DATA_ROOT_ARG} --threads {threads} --out {output:q} 2> {log:q}"
