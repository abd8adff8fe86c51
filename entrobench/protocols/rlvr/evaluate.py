"""Held-out evaluation of a policy: greedy accuracy, pass@1, pass@k and maj@k.

Kept behind one function, `evaluate_policy`, so that the lm-eval integration can replace it
(same metric names) once it lands. It samples from its own generator: the evaluation schedule
must not shift the training trajectory's random stream.
"""
from __future__ import annotations

from collections import Counter
from math import comb

import numpy as np
import torch

from entrobench.protocols.rlvr.model import sample
from entrobench.protocols.rlvr.task import Addition, decode


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al. 2021, arXiv 2107.03374, Eq. 1):
    1 - C(n - c, k) / C(n, k)."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per prompt, got {n}")
    return 1.0 - comb(n - c, k) / comb(n, k)


def majority_correct(answers: list[str], correct: list[bool]) -> bool:
    """maj@k: is the most frequent answer among the k samples correct? Ties go to the answer
    seen first, so the verdict does not depend on anything but the samples."""
    top = Counter(answers).most_common(1)[0][0]
    return correct[answers.index(top)]


def k_values(k: int) -> list[int]:
    """The pass@k columns for k samples per prompt: powers of two up to k, and k itself."""
    return sorted({2**i for i in range(k.bit_length()) if 2**i <= k} | {k})


@torch.no_grad()
def evaluate_policy(model: torch.nn.Module, task: Addition, k: int, temperature: float, generator: torch.Generator,
                    pairs: torch.Tensor | None = None, batch: int = 1024) -> dict[str, float]:
    """Metrics on the held-out prompts (all of them unless `pairs` is given), k samples each."""
    was_training = model.training
    model.eval()
    pairs = task.eval_pairs if pairs is None else pairs
    greedy, correct_counts, majority = [], [], []
    for start in range(0, len(pairs), batch):
        chunk = pairs[start : start + batch]
        prompts = task.prompts(chunk)
        greedy.append(task.rewards(chunk, sample(model, prompts, task.answer_len, 0.0, None)))
        responses = sample(model, prompts.repeat_interleave(k, 0), task.answer_len, temperature, generator)
        rewards = task.rewards(chunk.repeat_interleave(k, 0), responses).view(-1, k)
        texts = np.array(decode(responses), dtype=object).reshape(-1, k)
        correct_counts += rewards.sum(1).long().tolist()
        majority += [majority_correct(list(t), [bool(x) for x in r]) for t, r in zip(texts, rewards.tolist())]
    model.train(was_training)
    metrics = {"accuracy": float(torch.cat(greedy).mean())}
    for kk in k_values(k):
        metrics[f"pass_at_{kk}"] = float(np.mean([pass_at_k(k, c, kk) for c in correct_counts]))
    metrics[f"maj_at_{k}"] = float(np.mean(majority))
    return metrics
