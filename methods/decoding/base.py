"""What every decoding method shares: the contract the decoding protocol calls, and the
per-token bookkeeping (entropy of the full distribution, size of the kept set).

The contract, called by entrobench/protocols/decoding/model.py inside Hugging Face `generate`:
    sampler = Cls(Cls.Params(**card_params))
    processors = sampler.processors(temperature)   # logits processors, applied in order
Every method samples (`do_sample=True`) from what its processors leave: a method truncates by
setting the logits of removed tokens to -inf. Temperature comes first, then truncation, as in
transformers' own warpers. A method runs unchanged at every scale and with every model.
"""
from __future__ import annotations

import torch

NEG_INF = float("-inf")


class LogitsProcessor:
    """transformers' logits-processor contract, `(input_ids, scores) -> scores`, which `generate`
    calls by duck typing. Ours rather than `transformers.LogitsProcessor` so that importing a method
    (every snakemake call checks every card's methods) does not import transformers (about 1 s)."""

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        raise NotImplementedError


class TemperatureScale(LogitsProcessor):
    """logits / T. T is the card's setting, not a method parameter: every sampler sees it."""

    def __init__(self, temperature: float):
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return scores / self.temperature if self.temperature != 1.0 else scores


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """H(softmax(logits)) in nats along the last axis; -inf logits count as probability 0."""
    logp = logits.float().log_softmax(-1)
    return -torch.xlogy(logp.exp(), logp.exp()).sum(-1)


class Sampler:
    """A decoding method: its parameters and the logits processors it applies at temperature T."""

    def __init__(self, params):
        self.params = params

    def processors(self, temperature: float) -> list[LogitsProcessor]:
        return [TemperatureScale(temperature), *self.truncation()]

    def truncation(self) -> list[LogitsProcessor]:
        """The processors that remove tokens (none: plain temperature sampling)."""
        return []


class TokenStats(LogitsProcessor):
    """Records, per generated position of the rows still running, the entropy (nats) of the
    distribution it is given and how many tokens it keeps. Placed first it sees the model's full
    distribution (T = 1, nothing removed); placed last, the distribution actually sampled from.
    Rows whose last token is a stop id have finished (generate pads them with eos) and are skipped."""

    def __init__(self, stop_ids: set[int]):
        self.stop_ids = torch.tensor(sorted(stop_ids), dtype=torch.long)
        self.entropy_sum, self.kept_sum, self.count = 0.0, 0.0, 0

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        running = ~torch.isin(input_ids[:, -1], self.stop_ids.to(input_ids.device))
        if running.any():
            rows = scores[running]
            self.entropy_sum += entropy(rows).sum().item()
            self.kept_sum += torch.isfinite(rows).sum().item()
            self.count += int(running.sum())
        return scores

    def means(self) -> tuple[float, float]:
        n = max(self.count, 1)
        return self.entropy_sum / n, self.kept_sum / n
