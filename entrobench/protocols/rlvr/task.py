"""The generated tasks and their verifiers: addition problems with a known answer.

Every task speaks through one interface, so the trainer, the warm-up and the lm-eval evaluation
take any of them: `sample_pairs` / `eval_pairs` (problem ids; a fixed held-out set, seeded apart
from every training seed, never drawn for training), `encode` (left-padded prompt ids and mask),
`max_new_tokens` and `eos_id` (how responses end), `texts` and `rewards` (the verifier on the
decoded response: the same function an LLM-scale task would use), `prompt_texts` and `verifier`
(what lm-eval is given), `hf_tokenizer` (saved beside an evaluated policy).

- `Addition` (smoke): "037+450=" -> "0487", operands zero-padded to `digits`, the answer to
  digits + 1, one token per character, no EOS: every response is answer_len tokens.
- `ChatAddition` (medium): a pretrained chat model's two-digit addition with one worked example
  as an earlier chat turn (as the decoding family's eb_add2), free-form answers that end at the
  model's end-of-turn token, scored on "answer is N", else the last number.
"""
from __future__ import annotations

import re

import torch

VOCAB = "0123456789+="
TOKEN = {ch: i for i, ch in enumerate(VOCAB)}
HELD_OUT_SEED = 20250528  # the eval prompts' own seed: never a training seed's stream
_INTEGER = re.compile(r"[+]?([0-9]+)")


def exact_answer(response: str) -> int | None:
    """The character task's answer: the response's integer, surrounding spaces, a leading '+' and
    leading zeros accepted; None for a '-' sign, inner spaces, other characters or nothing."""
    match = _INTEGER.fullmatch(response.strip())
    return int(match.group(1)) if match else None


def free_form_answer(response: str) -> float | None:
    """A chat model's answer: the number after "answer is", else the last number in the response."""
    from entrobench.lm.answers import extract_number

    return extract_number(response)


# a task's `verifier` names how its answer is read; the reward, the per-step accuracy and lm-eval
# (tasks/utils.py) all read it this way, and maj@k votes over these values, not raw strings
ANSWERS = {"exact": exact_answer, "answer_is": free_form_answer}


def check(verifier: str, response: str, target: int) -> bool:
    value = ANSWERS[verifier](response)
    return value is not None and value == target


def verify(response: str, target: int) -> bool:
    """The character task's exact-match verifier."""
    return check("exact", response, target)


def decode(tokens: torch.Tensor) -> list[str]:
    """(N, L) character-task token ids -> N strings."""
    return ["".join(VOCAB[t] for t in row) for row in tokens.tolist()]


class _PairTask:
    """Problems numbered 0 .. n_pairs - 1, a fixed held-out subset, and training draws outside it."""

    verifier = "exact"

    def __init__(self, n_pairs: int, held_out: int, excluded: list[int] = ()):
        self.n_pairs = n_pairs
        gen = torch.Generator().manual_seed(HELD_OUT_SEED)
        order = torch.randperm(n_pairs, generator=gen)
        order = order[~torch.isin(order, torch.tensor(list(excluded), dtype=torch.long))]
        self.eval_pairs = order[:held_out]
        self._not_for_training = torch.zeros(n_pairs, dtype=torch.bool)
        self._not_for_training[self.eval_pairs] = True
        self._not_for_training[list(excluded)] = True

    def sample_pairs(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n training pair ids (held-out and excluded pairs redrawn)."""
        pairs = torch.randint(self.n_pairs, (n,), generator=generator)
        while (bad := self._not_for_training[pairs]).any():
            pairs[bad] = torch.randint(self.n_pairs, (int(bad.sum()),), generator=generator)
        return pairs

    def operands(self, pairs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def targets(self, pairs: torch.Tensor) -> torch.Tensor:
        a, b = self.operands(pairs)
        return a + b

    def texts(self, responses: torch.Tensor, mask: torch.Tensor | None = None) -> list[str]:
        raise NotImplementedError

    def rewards(self, pairs: torch.Tensor, responses: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """1.0 where the verifier accepts the response, else 0.0: (N,)."""
        texts, targets = self.texts(responses, mask), self.targets(pairs).tolist()
        return torch.tensor([float(check(self.verifier, text, t)) for text, t in zip(texts, targets)])


class Addition(_PairTask):
    eos_id = None  # fixed-width answers: no end token

    def __init__(self, digits: int, held_out: int):
        super().__init__(10 ** (2 * digits), held_out)
        self.digits = digits
        self.prompt_len = 2 * digits + 2  # "a+b="
        self.answer_len = self.max_new_tokens = digits + 1

    def operands(self, pairs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        base = 10**self.digits
        return pairs // base, pairs % base

    def prompts(self, pairs: torch.Tensor) -> torch.Tensor:
        """(N,) pair ids -> (N, prompt_len) tokens of "a+b="."""
        a, b = self.operands(pairs)
        plus, equals = torch.full_like(a, TOKEN["+"])[:, None], torch.full_like(a, TOKEN["="])[:, None]
        return torch.cat([_digits(a, self.digits), plus, _digits(b, self.digits), equals], 1)

    def encode(self, pairs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        prompts = self.prompts(pairs)
        return prompts, torch.ones_like(prompts)  # fixed width: never padded

    def prompt_texts(self, pairs: torch.Tensor) -> list[str]:
        return decode(self.prompts(pairs))

    def answers(self, pairs: torch.Tensor) -> torch.Tensor:
        """(N,) -> (N, answer_len) tokens of the zero-padded sum."""
        return _digits(self.targets(pairs), self.answer_len)

    def texts(self, responses: torch.Tensor, mask: torch.Tensor | None = None) -> list[str]:
        return decode(responses)

    def hf_tokenizer(self):
        return char_tokenizer()


class ChatAddition(_PairTask):
    """Two-digit (in general `digits`-digit, no leading zeros) addition for a chat model."""

    verifier = "answer_is"
    EXAMPLE = (34, 51)  # the worked example, the decoding family's eb_add2 one; never asked

    def __init__(self, tokenizer, digits: int, held_out: int, max_new_tokens: int):
        self.low, self.size = 10 ** (digits - 1), 9 * 10 ** (digits - 1)
        a, b = self.EXAMPLE
        super().__init__(self.size**2, held_out, excluded=[(a - self.low) * self.size + (b - self.low)])
        self.tokenizer, self.max_new_tokens = tokenizer, max_new_tokens
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.eos_id = tokenizer.eos_token_id  # the chat model's end of turn (SmolLM2: <|im_end|>)

    def operands(self, pairs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return pairs // self.size + self.low, pairs % self.size + self.low

    def prompt_texts(self, pairs: torch.Tensor) -> list[str]:
        (ea, eb), (a, b) = self.EXAMPLE, self.operands(pairs)
        example = [{"role": "user", "content": f"{ea} + {eb} ="},
                   {"role": "assistant", "content": f"{ea} + {eb} = {ea + eb}. The answer is {ea + eb}."}]
        return [self.tokenizer.apply_chat_template(example + [{"role": "user", "content": f"{x} + {y} ="}], tokenize=False, add_generation_prompt=True)
                for x, y in zip(a.tolist(), b.tolist())]

    def encode(self, pairs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch = self.tokenizer(self.prompt_texts(pairs), return_tensors="pt", padding=True, add_special_tokens=False)
        return batch.input_ids, batch.attention_mask

    def texts(self, responses: torch.Tensor, mask: torch.Tensor | None = None) -> list[str]:
        rows = responses.tolist() if mask is None else [r[m].tolist() for r, m in zip(responses, mask)]
        return self.tokenizer.batch_decode(rows, skip_special_tokens=True)

    def hf_tokenizer(self):
        return self.tokenizer


def _digits(values: torch.Tensor, width: int) -> torch.Tensor:
    """Most significant digit first: (N,) -> (N, width)."""
    powers = 10 ** torch.arange(width - 1, -1, -1)
    return (values[:, None] // powers) % 10


EOS = "<eos>"


def char_tokenizer():
    """A fast tokenizer whose ids match TOKEN exactly, EOS = len(VOCAB), no added BOS/EOS.

    The character task speaks its own one-character-per-token vocabulary, so the tokenizer is a
    WordLevel model over those characters with ids equal to their VOCAB index. It adds one special
    token, EOS, after them: lm-eval needs an end-of-text token (it is always a stop sequence and the
    pad id), but the policy's embedding has only len(VOCAB) rows, so EOS is never generated and never
    fed to it. Prompts are fixed-width, so no request is ever padded."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {**TOKEN, EOS: len(VOCAB)}
    # a character outside VOCAB becomes EOS, an id the policy's embedding rejects: an error, not another digit
    backend = Tokenizer(models.WordLevel(vocab, unk_token=EOS))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")  # one token per character
    backend.decoder = decoders.Fuse()  # "0" "4" "8" -> "048", no spaces between tokens
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=EOS, pad_token=EOS)
