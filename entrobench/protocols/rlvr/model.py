"""The policy: a causal decoder built from a transformers config, trained from scratch.

Built through `transformers` so that the same code path takes a pretrained checkpoint
(SmolLM2, Qwen2.5) later: only `build_policy` changes. Sampling is a plain torch loop: at
~100k parameters and 4 response tokens it is faster than `generate`, and it draws from a
torch.Generator the trainer owns, which keeps runs deterministic per seed.
"""
from __future__ import annotations

import torch

from entrobench.protocols.rlvr.task import VOCAB


def build_policy(n_layer: int, d_model: int, n_head: int, n_positions: int, seed: int) -> torch.nn.Module:
    """A pre-LayerNorm GPT-2 decoder over the task's vocabulary, no dropout, seeded init."""
    from transformers import GPT2Config, GPT2LMHeadModel  # heavy import: paid by the jobs that build a model

    config = GPT2Config(
        vocab_size=len(VOCAB), n_positions=n_positions, n_embd=d_model, n_layer=n_layer, n_head=n_head,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None, eos_token_id=None,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    return model


def response_logits(model: torch.nn.Module, prompts: torch.Tensor, responses: torch.Tensor, temperature: float) -> torch.Tensor:
    """Logits (at the sampling temperature) of each response position: (N, P), (N, L) -> (N, L, V)."""
    tokens = torch.cat([prompts, responses], 1)[:, :-1]
    logits = model(input_ids=tokens).logits[:, prompts.shape[1] - 1 :]
    return logits.float() / temperature


def token_logp(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log pi of the given tokens: (N, L, V), (N, L) -> (N, L)."""
    return logits.log_softmax(-1).gather(-1, tokens[..., None]).squeeze(-1)


@torch.no_grad()
def sample(model: torch.nn.Module, prompts: torch.Tensor, length: int, temperature: float, generator: torch.Generator | None,
           return_logits: bool = False):
    """`length` tokens per prompt; temperature 0 (or no generator) is greedy: (N, P) -> (N, length).

    With return_logits, also the logits each token was drawn from (at the temperature), (N, length, V):
    the sampling policy's log-probs and entropy come with the rollout, without another forward pass.
    """
    tokens, steps = prompts, []
    for _ in range(length):
        logits = model(input_ids=tokens).logits[:, -1].float()
        greedy = temperature == 0 or generator is None
        if not greedy:
            logits = logits / temperature
        nxt = logits.argmax(-1, keepdim=True) if greedy else torch.multinomial(logits.softmax(-1), 1, generator=generator)
        tokens = torch.cat([tokens, nxt], 1)
        steps.append(logits)
    responses = tokens[:, prompts.shape[1] :]
    return (responses, torch.stack(steps, 1)) if return_logits else responses
