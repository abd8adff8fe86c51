"""lm-eval's Hugging Face model with a decoding method from methods/decoding inside `generate`.

Shared by every family that evaluates a language model through lm-eval (decoding's samplers,
RLVR's held-out evaluation of a policy).

No fork: `SamplerLM` subclasses lm-eval's HFLM and replaces only `_model_generate`. The task's
own sampling settings (do_sample, temperature, top_p, ...) give way to the card's sampler and
temperature; its stop sequences and token budget stay. Registered as `entrobench-hf`, so the
lm-eval CLI finds it once this module is imported:

    python -m entrobench.lm.sampler_lm run --model entrobench-hf \
        --model_args pretrained=DIR,sampler=top_h,temperature=1.5,alpha=0.4 --device cpu --tasks ...

Every generate call is reseeded from (seed, call index): samplers compared at one seed draw with
common random numbers, which lowers the variance of their differences.
"""
from __future__ import annotations

import time

import torch
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from transformers import LogitsProcessorList

from methods import registry
from methods.decoding.base import TokenStats

_TASK_SAMPLING_KEYS = ("do_sample", "temperature", "top_p", "top_k", "min_p", "typical_p")
# transformers' own warpers, turned off: the sampler's processors do all the work
_WARPERS_OFF = {"do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "min_p": None}


@register_model("entrobench-hf")
class SamplerLM(HFLM):
    def __init__(self, pretrained, sampler: str = "greedy", temperature: float = 1.0, seed: int = 0, sampler_params: dict | None = None, **kwargs):
        params = dict(sampler_params or {})
        name = sampler if "/" in sampler else f"decoding/{sampler}"
        cls = registry.get(name)
        # CLI model_args arrive flat (alpha=0.4): take the sampler's own fields out of them
        for key in [k for k in kwargs if k in cls.Params.__dataclass_fields__]:
            params[key] = kwargs.pop(key)
        super().__init__(pretrained=pretrained, **kwargs)
        self.sampler = cls(cls.Params(**params))
        self.temperature, self.seed, self.calls = float(temperature), int(seed), 0
        stop = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id} - {None}
        self.full_stats, self.sampled_stats = TokenStats(stop), TokenStats(stop)
        self.generated_tokens, self.generate_s = 0, 0.0

    def _model_generate(self, context, max_length: int, stop: list[str], **generation_kwargs) -> torch.Tensor:
        for key in _TASK_SAMPLING_KEYS:
            generation_kwargs.pop(key, None)
        processors = LogitsProcessorList([self.full_stats, *self.sampler.processors(self.temperature), self.sampled_stats])
        torch.manual_seed(self.seed * 1_000_003 + self.calls)
        self.calls += 1
        before = self.sampled_stats.count
        start = time.perf_counter()
        out = super()._model_generate(context, max_length, stop, logits_processor=processors, **_WARPERS_OFF, **generation_kwargs)
        self.generate_s += time.perf_counter() - start
        self.generated_tokens += self.sampled_stats.count - before
        return out

    def token_stats(self) -> dict[str, float]:
        full_entropy, _ = self.full_stats.means()
        sampled_entropy, kept = self.sampled_stats.means()
        return {
            "token_entropy": full_entropy,
            "sampled_entropy": sampled_entropy,
            "kept_tokens": kept,
            "gen_tokens_per_s": self.generated_tokens / max(self.generate_s, 1e-9),
        }


if __name__ == "__main__":
    from lm_eval.__main__ import cli_evaluate

    cli_evaluate()
