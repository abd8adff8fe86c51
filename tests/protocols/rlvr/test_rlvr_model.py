"""The scratch decoder's prefix-tree passes (model.tree_sample, model.tree_logits) against the
transformers passes they replace for fixed-width prompts: the same tokens drawn from the same
generator, the same logits and gradients to float rounding, and the models they refuse."""
from __future__ import annotations

import pytest
import torch

from entrobench.protocols.rlvr.model import (
    _distinct,
    build_policy,
    response_logits,
    runs_as_tree,
    sample,
    token_logp,
    tree_logits,
    tree_sample,
)
from entrobench.protocols.rlvr.task import Addition


@pytest.fixture(scope="module")
def batch():
    """The smoke-size decoder, sharpened so that a group's samples often agree (shared prefixes), and
    12 prompts x 8 samples of 3-digit addition, groups contiguous as in a rollout."""
    task = Addition(3, 16)
    model = build_policy(2, 64, 4, task.prompt_len + task.answer_len, seed=0)
    with torch.no_grad():
        model.lm_head.weight.mul_(4.0)  # tied to the embedding: a confident policy, as after the warm-up
    prompts, mask = task.encode(task.sample_pairs(12, torch.Generator().manual_seed(0)).repeat_interleave(8))
    return model, task, prompts, mask


def test_tree_sampling_draws_the_same_tokens_as_sample(batch):
    model, task, prompts, mask = batch
    responses, live, logits = sample(model, prompts, mask, task.answer_len, 1.0, torch.Generator().manual_seed(5))
    tree_responses, tree_live, tree_logits_ = tree_sample(model, prompts, task.answer_len, 1.0, torch.Generator().manual_seed(5))
    distinct = len(torch.unique(torch.cat([prompts, responses], 1), dim=0))
    assert len(torch.unique(prompts, dim=0)) < distinct < len(prompts)  # prefixes are shared, and responses differ
    assert torch.equal(tree_responses, responses) and torch.equal(tree_live, live)
    torch.testing.assert_close(tree_logits_, logits, rtol=1e-5, atol=1e-5)
    greedy, _, _ = sample(model, prompts, mask, task.answer_len, 0.0, None)
    assert torch.equal(tree_sample(model, prompts, task.answer_len, 0.0, None)[0], greedy)


def test_tree_scoring_gives_the_logits_and_gradients_of_response_logits(batch):
    model, task, prompts, mask = batch
    responses, _, _ = sample(model, prompts, mask, task.answer_len, 1.0, torch.Generator().manual_seed(5))
    weights = torch.linspace(-1.0, 1.0, len(prompts))[:, None]  # a different weight per sequence, as advantages

    def gradient(logits: torch.Tensor) -> torch.Tensor:
        model.zero_grad(set_to_none=True)
        (token_logp(logits, responses) * weights).sum().backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    expected, got = response_logits(model, prompts, mask, responses, 0.7), tree_logits(model, prompts, responses, 0.7)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    ours, theirs = gradient(got), gradient(expected)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5 * float(theirs.abs().max()))  # atol: sums that cancel


def test_distinct_rows_by_key_and_row_by_row_agree():
    tokens = torch.tensor([[3, 1, 2], [0, 1, 2], [3, 1, 2], [3, 1, 1], [0, 1, 2]])
    rows, index = _distinct(tokens, vocab=4)  # keyed: 4^3 fits in int64
    assert torch.equal(rows[index], tokens) and len(rows) == 3
    wide, wide_index = _distinct(tokens, vocab=2**31)  # too wide for a key: compared row by row
    assert torch.equal(wide, rows) and torch.equal(wide_index, index)


def test_only_the_scratch_decoder_takes_the_tree_passes(batch, tiny_chat_lm):
    from transformers import GPT2Config, GPT2LMHeadModel

    from entrobench.protocols.rlvr.model import load_pretrained

    assert runs_as_tree(batch[0])
    assert not runs_as_tree(GPT2LMHeadModel(GPT2Config(vocab_size=12, n_positions=12, n_embd=16, n_layer=1, n_head=2)))  # dropout 0.1
    assert not runs_as_tree(load_pretrained(str(tiny_chat_lm)))  # a chat model: the general passes
