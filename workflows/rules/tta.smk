# Test-time adaptation: the clean data and the source model, each built once and shared by
# every method, seed and card that agree on its config (the hash in the file name).
from entrobench.protocols.tta import spec as tta


def _tta_builds():
    """Cache path -> (card, scale, dataset, norm) for every TTA card at every scale."""
    data, source = {}, {}
    for card in CARDS.values():
        if card.spec.family != "tta":
            continue
        for scale in card.spec.scales:
            s = scaled(card.id, scale)
            for dataset in s.datasets:
                data.setdefault(tta.data_path(s.protocol, dataset), (card, scale, dataset, None))
                for setting in s.settings:
                    source.setdefault(tta.source_path(s.protocol, dataset, setting.norm), (card, scale, dataset, setting.norm))
    return data, source


TTA_DATA, TTA_SOURCE = _tta_builds()


def _source_build(wc):
    return TTA_SOURCE[f"{tta.CACHE}/source/{wc.dataset}-{wc.arch}-{wc.norm}-{wc.hash}.pt"]


def _source_data(wc):
    card, scale, dataset, _ = _source_build(wc)
    return tta.data_path(scaled(card.id, scale).protocol, dataset)


rule prepare_data:
    output:
        tta.CACHE + "/data/{dataset}-{hash}.npz",
    log:
        tta.CACHE + "/logs/data-{dataset}-{hash}.log",
    params:
        card=lambda wc, output: str(TTA_DATA[output[0]][0].path),
        scale=lambda wc, output: TTA_DATA[output[0]][1],
        # a data root that appears (or goes) later must redo the data, not keep a 'skipped' file
        data_present=lambda wc: bool(DATA_ROOT and DATA_ROOT.is_dir()),
    shell:
        "{PY} -m entrobench prepare-data --card {params.card} --scale {params.scale} --dataset {wildcards.dataset}"
        " {DATA_ROOT_ARG} --out {output} 2> {log}"


rule train_source:
    input:
        data=_source_data,
        code=REPO / "entrobench" / "protocols" / "tta" / "run.py",
    output:
        tta.CACHE + "/source/{dataset}-{arch}-{norm}-{hash}.pt",
    log:
        tta.CACHE + "/logs/source-{dataset}-{arch}-{norm}-{hash}.log",
    params:
        card=lambda wc: str(_source_build(wc)[0].path),
        scale=lambda wc: _source_build(wc)[1],
    threads: 1
    shell:
        "{PY} -m entrobench train-source --card {params.card} --scale {params.scale} --dataset {wildcards.dataset}"
        " --norm {wildcards.norm} --data {input.data} {DATA_ROOT_ARG} --threads {threads} --out {output} 2> {log}"
