"""The policy and its two passes: sampling a rollout, and scoring given responses.

A policy is any transformers causal LM: a small decoder built from a config and trained from
scratch (smoke), or a pretrained chat model loaded from a folder (medium: SmolLM2-135M-Instruct;
full: Qwen2.5). Prompts come left-padded with an attention mask, so position ids are counted
over real tokens only. Sampling is a KV-cached torch loop rather than `generate`: it draws from a
torch.Generator the trainer owns (runs are deterministic per seed) and hands back the logits
each token was drawn from, which are the sampling policy's log-probs and entropy at no extra cost.
"""
from __future__ import annotations

import torch

from entrobench.protocols.rlvr.task import VOCAB


def build_policy(n_layer: int, d_model: int, n_head: int, n_positions: int, seed: int) -> torch.nn.Module:
    """A pre-LayerNorm GPT-2 decoder over the character task's vocabulary, no dropout, seeded init."""
    from transformers import GPT2Config, GPT2LMHeadModel  # heavy import: paid by the jobs that build a model

    config = GPT2Config(
        vocab_size=len(VOCAB), n_positions=n_positions, n_embd=d_model, n_layer=n_layer, n_head=n_head,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None, eos_token_id=None,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    return model


def load_pretrained(folder: str) -> torch.nn.Module:
    """A pretrained causal LM from a Hugging Face folder, float32, dropout off."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


def positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that skip left padding: (N, T) 0/1 mask -> (N, T)."""
    return (mask.long().cumsum(1) - 1).clamp(min=0)


def response_logits(model: torch.nn.Module, prompts: torch.Tensor, prompt_mask: torch.Tensor, responses: torch.Tensor,
                    temperature: float) -> torch.Tensor:
    """Logits (at the sampling temperature) of each response position: (N, P), (N, P), (N, L) -> (N, L, V).

    Positions after a response's end hold padding; their logits are computed and ignored (the
    response mask leaves them out), and causal attention keeps them from touching earlier ones."""
    length = responses.shape[1]
    tokens = torch.cat([prompts, responses], 1)[:, :-1]
    if prompt_mask.all():  # nothing padded: the model's own causal path (an explicit all-ones mask changes the float rounding)
        return model(input_ids=tokens, logits_to_keep=length).logits.float() / temperature
    mask = torch.cat([prompt_mask, torch.ones_like(responses)], 1)[:, :-1]
    logits = model(input_ids=tokens, attention_mask=mask, position_ids=positions(mask), logits_to_keep=length).logits
    return logits.float() / temperature


def token_logp(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log pi of the given tokens: (N, L, V), (N, L) -> (N, L)."""
    return logits.log_softmax(-1).gather(-1, tokens[..., None]).squeeze(-1)


@torch.no_grad()
def sample(model: torch.nn.Module, prompts: torch.Tensor, prompt_mask: torch.Tensor, max_new_tokens: int, temperature: float,
           generator: torch.Generator | None, eos_id: int | None = None):
    """Up to `max_new_tokens` tokens per prompt; temperature 0 (or no generator) is greedy.

    Returns (responses (N, L), response mask (N, L) bool, logits (N, L, V) at the temperature),
    L <= max_new_tokens. A response ends with its first `eos_id` (kept: stopping is the policy's
    choice, and its log-prob is trained like any other token); later positions are padded with
    `eos_id` and masked out. The loop stops once every response has ended. Without `eos_id`
    every response is max_new_tokens long (fixed-width answers)."""
    greedy = temperature == 0 or generator is None
    mask = prompt_mask.long()
    pos = positions(mask)
    out = model(input_ids=prompts, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1)
    tokens, alive, steps, live = [], torch.ones(len(prompts), dtype=torch.bool), [], []
    for _ in range(max_new_tokens):
        logits = out.logits[:, -1].float()
        if not greedy:
            logits = logits / temperature
        nxt = logits.argmax(-1) if greedy else torch.multinomial(logits.softmax(-1), 1, generator=generator)[:, 0]
        if eos_id is not None:
            nxt = torch.where(alive, nxt, eos_id)
        tokens.append(nxt)
        steps.append(logits)
        live.append(alive.clone())
        if eos_id is not None:
            alive &= nxt != eos_id
            if not alive.any():
                break
        if len(tokens) == max_new_tokens:
            break
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
        pos = pos[:, -1:] + 1
        out = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=pos, past_key_values=out.past_key_values, use_cache=True)
    return torch.stack(tokens, 1), torch.stack(live, 1), torch.stack(steps, 1)
