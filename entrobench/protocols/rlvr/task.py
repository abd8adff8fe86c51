"""The smoke task: n-digit addition with a fixed-width answer, and its exact-match verifier.

"037+450=" -> "0487": operands zero-padded to `digits`, the answer to digits + 1, one token per
character. Prompts are drawn from all 10^(2 digits) pairs; a fixed held-out set (seeded apart
from every training seed) is excluded from training. The verifier reads the response as text,
so the reward is the same function an LLM-scale task would use (`verify`).
"""
from __future__ import annotations

import re

import torch

VOCAB = "0123456789+="
TOKEN = {ch: i for i, ch in enumerate(VOCAB)}
HELD_OUT_SEED = 20250528  # the eval prompts' own seed: never a training seed's stream
_INTEGER = re.compile(r"[+]?([0-9]+)")


def verify(response: str, target: int) -> bool:
    """Exact match of the response's integer with the target: surrounding spaces, a leading '+'
    and leading zeros are accepted; a '-' sign, inner spaces, other characters or nothing are not."""
    match = _INTEGER.fullmatch(response.strip())
    return match is not None and int(match.group(1)) == target


def decode(tokens: torch.Tensor) -> list[str]:
    """(N, L) token ids -> N strings."""
    return ["".join(VOCAB[t] for t in row) for row in tokens.tolist()]


class Addition:
    def __init__(self, digits: int, held_out: int):
        self.digits = digits
        self.n_pairs = 10 ** (2 * digits)
        self.prompt_len = 2 * digits + 2  # "a+b="
        self.answer_len = digits + 1
        gen = torch.Generator().manual_seed(HELD_OUT_SEED)
        self.eval_pairs = torch.randperm(self.n_pairs, generator=gen)[:held_out]
        self._is_eval = torch.zeros(self.n_pairs, dtype=torch.bool)
        self._is_eval[self.eval_pairs] = True

    def sample_pairs(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n training pair ids (held-out pairs redrawn)."""
        pairs = torch.randint(self.n_pairs, (n,), generator=generator)
        while (bad := self._is_eval[pairs]).any():
            pairs[bad] = torch.randint(self.n_pairs, (int(bad.sum()),), generator=generator)
        return pairs

    def operands(self, pairs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        base = 10**self.digits
        return pairs // base, pairs % base

    def targets(self, pairs: torch.Tensor) -> torch.Tensor:
        a, b = self.operands(pairs)
        return a + b

    def prompts(self, pairs: torch.Tensor) -> torch.Tensor:
        """(N,) pair ids -> (N, prompt_len) tokens of "a+b="."""
        a, b = self.operands(pairs)
        plus, equals = torch.full_like(a, TOKEN["+"])[:, None], torch.full_like(a, TOKEN["="])[:, None]
        return torch.cat([_digits(a, self.digits), plus, _digits(b, self.digits), equals], 1)

    def answers(self, pairs: torch.Tensor) -> torch.Tensor:
        """(N,) -> (N, answer_len) tokens of the zero-padded sum."""
        return _digits(self.targets(pairs), self.answer_len)

    def rewards(self, pairs: torch.Tensor, responses: torch.Tensor) -> torch.Tensor:
        """1.0 where the verifier accepts the response, else 0.0: (N,)."""
        targets = self.targets(pairs).tolist()
        return torch.tensor([float(verify(text, t)) for text, t in zip(decode(responses), targets)])


def _digits(values: torch.Tensor, width: int) -> torch.Tensor:
    """Most significant digit first: (N,) -> (N, width)."""
    powers = 10 ** torch.arange(width - 1, -1, -1)
    return (values[:, None] // powers) % 10
