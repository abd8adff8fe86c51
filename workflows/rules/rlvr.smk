# RLVR: the supervised warm-up, built once and shared by every method, seed and card that
# agree on its config (the hash in the file name); every GRPO cell starts from it.
from entrobench.protocols.rlvr import spec as rlvr


def _rlvr_warmups():
    """Cache path -> (card, scale, dataset) for every RLVR card at every scale."""
    builds = {}
    for card in CARDS.values():
        if card.spec.family != "rlvr":
            continue
        for scale in card.spec.scales:
            s = scaled(card.id, scale)
            for dataset in s.datasets:
                builds.setdefault(rlvr.warmup_path(s.protocol, dataset), (card, scale, dataset))
    return builds


RLVR_WARMUPS = _rlvr_warmups()


def _warmup_build(wc):
    return RLVR_WARMUPS[f"{rlvr.CACHE}/warmup/{wc.dataset}-{wc.hash}.pt"]


def _warmup_model(wc):
    """A pretrained policy's converted folder (its warm-up is an evaluation of it), else nothing."""
    card, scale, _ = _warmup_build(wc)
    return rlvr.model_inputs(scaled(card.id, scale).protocol)


rule train_warmup:
    input:
        unpack(_warmup_model),
        # the training code, and the evaluation of the checkpoint (its accuracy_start, pass_at_1_start)
        code=[REPO / "entrobench" / "protocols" / "rlvr" / name for name in (
            "warmup.py", "model.py", "task.py", "evaluate.py", "hf_folder.py",
            "tasks/eb_rlvr_addition.yaml", "tasks/eb_rlvr_addition_greedy.yaml", "tasks/utils.py")],
    output:
        rlvr.CACHE + "/warmup/{dataset}-{hash}.pt",
    log:
        rlvr.CACHE + "/logs/warmup-{dataset}-{hash}.log",
    params:
        card=lambda wc: str(_warmup_build(wc)[0].path),
        scale=lambda wc: _warmup_build(wc)[1],
    threads: 1
    resources:
        **job_resources(_warmup_build),  # the scale's, as its cells': a pretrained model's evaluation needs its memory
    shell:
        "{PY} -m entrobench train-warmup --card {params.card} --scale {params.scale} --dataset {wildcards.dataset}"
        " {DATA_ROOT_ARG} --threads {threads} --out {output} 2> {log}"
