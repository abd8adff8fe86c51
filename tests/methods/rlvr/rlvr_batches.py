"""Small fixed batches for the RLVR loss tests (imported as a module: tests/ has no packages)."""
from __future__ import annotations

import math

import torch

from methods.rlvr.base import PolicyBatch, group_advantages



def random_batch(seed: int = 0, groups: int = 2, group_size: int = 4, length: int = 6, vocab: int = 7,
                 off_policy: float = 0.1, variant=None) -> PolicyBatch:
    """A batch as a trainer builds it: logp from logits (with grad), logp_old and logp_ref a little
    off, rewards 0/1, responses of different lengths. off_policy=0 makes logp_old == logp. With a
    `variant` that asks for rollout features, they are computed from the logits as sampled."""
    g = torch.Generator().manual_seed(seed)
    b = groups * group_size
    logits = torch.randn(b, length, vocab, generator=g).requires_grad_(True)
    tokens = torch.randint(vocab, (b, length), generator=g)
    rollout = variant.rollout_features(logits.detach(), tokens) if variant is not None and "rollout_logits" in variant.requires() else {}
    logp = logits.log_softmax(-1).gather(-1, tokens[..., None]).squeeze(-1)
    logp_old = logp.detach() + off_policy * torch.randn(b, length, generator=g)
    logp_ref = logp.detach() + 0.2 * torch.randn(b, length, generator=g)
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0] * math.ceil(b / 8))[:b]
    lengths = torch.randint(1, length + 1, (b,), generator=g)
    mask = torch.arange(length)[None, :] < lengths[:, None]
    return PolicyBatch(logp=logp, logp_old=logp_old, advantages=group_advantages(rewards, group_size),
                       mask=mask, logp_ref=logp_ref, logits=logits, rollout=rollout)


def hand_batch(logp, logp_old, advantages, mask=None, logp_ref=None) -> PolicyBatch:
    """A batch from plain lists; logp becomes a leaf with grad, entropy a dummy (no logits needed)."""
    logp = torch.tensor(logp, dtype=torch.float64, requires_grad=True)
    mask = torch.ones_like(logp, dtype=torch.bool) if mask is None else torch.tensor(mask, dtype=torch.bool)
    return PolicyBatch(
        logp=logp,
        logp_old=torch.tensor(logp_old, dtype=torch.float64),
        advantages=torch.tensor(advantages, dtype=torch.float64),
        mask=mask,
        logp_ref=None if logp_ref is None else torch.tensor(logp_ref, dtype=torch.float64),
        entropy=torch.zeros_like(logp),
    )
