"""The policy and its two passes: sampling a rollout, and scoring given responses.

A policy is any transformers causal LM: a small decoder built from a config and trained from
scratch (smoke), or a pretrained chat model loaded from a folder (medium: SmolLM2-135M-Instruct;
full: Qwen2.5). Prompts come left-padded with an attention mask, so position ids are counted
over real tokens only. Sampling is a KV-cached torch loop rather than `generate`: it draws from a
torch.Generator the trainer owns (runs are deterministic per seed) and hands back the logits
each token was drawn from, which are the sampling policy's log-probs and entropy at no extra cost.

The from-scratch decoder on fixed-width prompts has faster passes of its own (`tree_sample`,
`tree_logits`): a GRPO batch holds each prompt G times and, once the policy is confident, the
same response many times, so each distinct prefix is run once and its keys and values are shared
by every sequence that continues it (a prefix tree), in plain torch ops on the model's own weights
rather than through transformers' module stack. They compute the same function as `sample` and
`response_logits` and draw the same tokens from the same generator; only the float rounding
differs (summation order of the smaller matrix products, the fused tanh-GELU).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

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


# ---------------------------------------------------------------- the scratch decoder's prefix-tree passes


def runs_as_tree(model: torch.nn.Module) -> bool:
    """Whether `tree_sample` and `tree_logits` compute `model`: the GPT-2 that `build_policy` makes
    (learned positions, pre-LayerNorm blocks, tanh-GELU MLP 4x, scaled dot-product attention, a
    bias-free head, no dropout). Any other model takes `sample` and `response_logits`."""
    c = getattr(model, "config", None)
    return (getattr(c, "model_type", None) == "gpt2" and c.activation_function == "gelu_new" and c.scale_attn_weights
            and not (c.scale_attn_by_inverse_layer_idx or c.reorder_and_upcast_attn or c.add_cross_attention)
            and c.n_inner is None and c.resid_pdrop == c.embd_pdrop == c.attn_pdrop == 0 and model.lm_head.bias is None)


def _decoder(model: torch.nn.Module, tokens: torch.Tensor, past: list | None = None, rows: torch.Tensor | None = None, keep: int = 1):
    """Run `tokens` (N, T) through the GPT-2 `model` after the positions held in `past`.

    past: per layer (keys, values), each (M, H, S, head dim), of S earlier positions; sequence i
    continues row rows[i] of it (None: row i). Returns the logits of the last `keep` positions
    (N, keep, V) and the keys and values of all S + T positions per sequence (the next call's past)."""
    n, t = tokens.shape
    start = past[0][0].shape[2] if past else 0
    body, heads = model.transformer, model.config.n_head
    width, eps = body.wte.weight.shape[1], model.config.layer_norm_epsilon
    h = F.embedding(tokens, body.wte.weight) + body.wpe.weight[start:start + t]
    # causal among the new positions, all of the past visible; one new position sees everything
    mask = torch.ones(t, start + t, dtype=torch.bool).tril(start) if t > 1 and start else None
    present = []
    for i, block in enumerate(body.h):
        attn, mlp = block.attn, block.mlp
        x = F.layer_norm(h, (width,), block.ln_1.weight, block.ln_1.bias, eps).view(-1, width)
        q, k, v = torch.addmm(attn.c_attn.bias, x, attn.c_attn.weight).view(n, t, 3, heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        if past:
            keys, values = past[i] if rows is None else (p.index_select(0, rows) for p in past[i])
            k, v = torch.cat([keys, k], 2), torch.cat([values, v], 2)
        present.append((k, v))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=attn.scaling, is_causal=mask is None and t > 1)
        h = h + torch.addmm(attn.c_proj.bias, a.transpose(1, 2).reshape(-1, width), attn.c_proj.weight).view(n, t, width)
        x = F.layer_norm(h, (width,), block.ln_2.weight, block.ln_2.bias, eps).view(-1, width)
        x = F.gelu(torch.addmm(mlp.c_fc.bias, x, mlp.c_fc.weight), approximate="tanh")  # = gelu_new, fused
        h = h + torch.addmm(mlp.c_proj.bias, x, mlp.c_proj.weight).view(n, t, width)
    h = F.layer_norm(h[:, t - keep:], (width,), body.ln_f.weight, body.ln_f.bias, eps)
    return F.linear(h, model.lm_head.weight), present


def _distinct(tokens: torch.Tensor, vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct rows of `tokens` (N, T), ids below `vocab`, and each row's index among them (N,).

    A row is keyed by its tokens as the digits of one integer in base `vocab` where that fits in
    int64 (a 1-D unique is ~20x faster than a row-wise one), else compared row-wise."""
    if vocab ** tokens.shape[1] >= 2**62:
        return torch.unique(tokens, dim=0, return_inverse=True)
    keys = (tokens * vocab ** torch.arange(tokens.shape[1] - 1, -1, -1)).sum(1)
    distinct, index = torch.unique(keys, return_inverse=True)
    first = torch.empty_like(distinct).scatter_(0, index, torch.arange(len(keys)))  # a row of each (all alike)
    return tokens.index_select(0, first), index


@torch.no_grad()
def tree_sample(model: torch.nn.Module, prompts: torch.Tensor, max_new_tokens: int, temperature: float, generator: torch.Generator | None):
    """`sample` for fixed-width prompts (N, P), no end token: every response is max_new_tokens long.

    Each distinct prompt is run once, then each step runs each distinct prefix once (a node of
    the tree) and hands every sequence its node's next-token logits; the draws are `sample`'s
    (one multinomial over all N rows per step, same generator), so the tokens are too."""
    greedy = temperature == 0 or generator is None
    vocab = model.config.vocab_size
    nodes, node = _distinct(prompts, vocab)  # node: each sequence's row of `past`
    out, past = _decoder(model, nodes)
    tokens, steps = [], []
    for step in range(max_new_tokens):
        logits = out[:, -1].float().index_select(0, node)
        if not greedy:
            logits = logits / temperature
        nxt = logits.argmax(-1) if greedy else torch.multinomial(logits.softmax(-1), 1, generator=generator)[:, 0]
        tokens.append(nxt)
        steps.append(logits)
        if step + 1 == max_new_tokens:
            break
        children, node = torch.unique(node * vocab + nxt, return_inverse=True)  # (parent node, token) pairs
        out, past = _decoder(model, (children % vocab)[:, None], past, children // vocab)
    responses = torch.stack(tokens, 1)
    return responses, torch.ones_like(responses, dtype=torch.bool), torch.stack(steps, 1)


def tree_logits(model: torch.nn.Module, prompts: torch.Tensor, responses: torch.Tensor, temperature: float) -> torch.Tensor:
    """`response_logits` for fixed-width prompts (N, P) and responses (N, L): (N, L, V).

    Each distinct prompt's positions are run once, and each distinct response once after its
    prompt; with gradients, those of a shared position sum over the sequences that share it."""
    width, vocab = prompts.shape[1], model.config.vocab_size
    sequences, sequence = _distinct(torch.cat([prompts, responses], 1), vocab)
    heads, head = _distinct(sequences[:, :width], vocab)
    first, past = _decoder(model, heads)  # the last prompt position predicts the first response token
    logits = first.index_select(0, head)
    if responses.shape[1] > 1:
        rest, _ = _decoder(model, sequences[:, width:-1], past, head, keep=responses.shape[1] - 1)
        logits = torch.cat([logits, rest], 1)
    return logits.float().index_select(0, sequence) / temperature
