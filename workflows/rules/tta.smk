# Test-time adaptation: the clean data and the source model, each built once and shared by
# every method, seed and card that agree on its config (the hash in the file name).
from entrobench.protocols.tta import spec as tta


def _tta_builds():
    """Cache path -> (card, scale, dataset, norm or seed) for every TTA card at every scale."""
    data, source, streams = {}, {}, {}
    for card in CARDS.values():
        if card.spec.family != "tta":
            continue
        for scale in card.spec.scales:
            s = scaled(card.id, scale)
            for dataset in s.datasets:
                data.setdefault(tta.data_path(s.protocol, dataset), (card, scale, dataset, None))
                for seed in s.seeds:
                    streams.setdefault(tta.stream_path(s.protocol, dataset, seed), (card, scale, dataset, seed))
                for setting in s.settings:
                    source.setdefault(tta.source_path(s.protocol, dataset, setting.norm), (card, scale, dataset, setting.norm))
    return data, source, streams


TTA_DATA, TTA_SOURCE, TTA_STREAMS = _tta_builds()


def _source_build(wc):
    return TTA_SOURCE[f"{tta.CACHE}/source/{wc.dataset}-{wc.arch}-{wc.norm}-{wc.hash}.pt"]


def _clean_data(build):
    """The prepared clean data a cached build (source model or stream) is made from."""
    card, scale, dataset, _ = build
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
    resources:
        **CLUSTER_PLACEMENT,
    shell:
        "{PY} -m entrobench prepare-data --card {params.card} --scale {params.scale} --dataset {wildcards.dataset}"
        " {DATA_ROOT_ARG} --out {output} 2> {log}"


def _stream_build(wc):
    return TTA_STREAMS[f"{tta.CACHE}/streams/{wc.dataset}-{wc.hash}.npz"]


rule corrupt_stream:
    input:
        data=lambda wc: _clean_data(_stream_build(wc)),
        code=REPO / "entrobench" / "data" / "corruptions.py",
    output:
        tta.CACHE + "/streams/{dataset}-{hash}.npz",
    log:
        tta.CACHE + "/logs/stream-{dataset}-{hash}.log",
    params:
        card=lambda wc: str(_stream_build(wc)[0].path),
        scale=lambda wc: _stream_build(wc)[1],
        seed=lambda wc: _stream_build(wc)[3],
    resources:
        **CLUSTER_PLACEMENT,
    shell:
        "{PY} -m entrobench corrupt-stream --card {params.card} --scale {params.scale} --dataset {wildcards.dataset}"
        " --seed {params.seed} --data {input.data} --out {output} 2> {log}"


rule train_source:
    input:
        data=lambda wc: _clean_data(_source_build(wc)),
        code=REPO / "entrobench" / "protocols" / "tta" / "run.py",
    output:
        tta.CACHE + "/source/{dataset}-{arch}-{norm}-{hash}.pt",
    log:
        tta.CACHE + "/logs/source-{dataset}-{arch}-{norm}-{hash}.log",
    params:
        card=lambda wc: str(_source_build(wc)[0].path),
        scale=lambda wc: _source_build(wc)[1],
    threads: 1
    resources:
        **job_resources(_source_build),
    shell:
        "{PY} -m entrobench train-source --card {params.card} --scale {params.scale} --dataset {wildcards.dataset}"
        " --norm {wildcards.norm} --data {input.data} {DATA_ROOT_ARG} --threads {threads} --out {output} 2> {log}"
