"""Scoring for the RLVR held-out tasks (lm-eval loads this file by the YAMLs' `!function utils.*`).

The verifier is the task's own (named by each document's "verifier": task.ANSWERS), the one the GRPO reward uses; pass@k and maj@k are
evaluate.py's, so the numbers mean the same thing wherever they are computed.
"""
from __future__ import annotations

from entrobench.protocols.rlvr.evaluate import k_values, majority_correct, pass_at_k
from entrobench.protocols.rlvr.task import ANSWERS, check


def score_samples(doc: dict, results: list[list[str]]) -> dict[str, float]:
    """All n sampled answers of one prompt (the take_first_k filter keeps them together)."""
    answers = results[0]
    correct = [check(doc["verifier"], a, doc["target"]) for a in answers]
    n = len(answers)
    scores = {f"pass_at_{k}": pass_at_k(n, sum(correct), k) for k in k_values(n)}
    values = [ANSWERS[doc["verifier"]](a) for a in answers]  # "0487" and "487" are one answer
    scores[f"maj_at_{n}"] = float(majority_correct(values, correct))
    return scores


def score_answer(doc: dict, results: list[str]) -> dict[str, float]:
    return {"accuracy": float(check(doc["verifier"], results[0], doc["target"]))}


def score_math(doc: dict, results: list[list[str]]) -> dict[str, float]:
    """avg@k of one math problem: the share of its k sampled answers math-verify accepts."""
    from entrobench.protocols.rlvr.math_answers import is_correct

    answers = results[0]
    return {"acc": sum(is_correct(a, doc["answer"]) for a in answers) / len(answers)}
