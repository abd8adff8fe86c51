"""Scoring for the decoding tasks (lm-eval loads this file by the YAMLs' `!function utils.*`).

Numeric answers: entrobench.lm.answers.extract_number. Names: any accepted answer as a whole
word, ignoring case.
Diversity over a set of outputs: distinct-n (unique n-grams / all n-grams, over all outputs) and
self-BLEU (mean BLEU of each output against all the others as references; lower = more diverse).
"""
from __future__ import annotations

import re

from entrobench.lm.answers import extract_number


def gsm8k_docs(dataset):
    """GSM8K's rows as released (question, answer ending "#### N") with the number as `target`."""
    return dataset.map(lambda doc: {"target": doc["answer"].split("####")[-1].strip().replace(",", "")})


def score_number(doc: dict, results: list[str]) -> dict:
    value = extract_number(results[0])
    return {"acc": float(value is not None and abs(value - float(doc["target"])) < 1e-6)}


def score_names(doc: dict, results: list[str]) -> dict:
    text = results[0]
    hit = any(re.search(rf"\b{re.escape(name)}\b", text, re.IGNORECASE) for name in doc["answers"])
    return {"acc": float(hit)}


def keep_text(doc: dict, results: list[str]) -> dict:
    text = results[0]
    return {"distinct_1": text, "distinct_2": text, "self_bleu": text}


def _tokens(text: str) -> list[str]:
    return re.findall(r"\w+|[^\w\s]", text.lower())


def distinct_n(texts: list[str], n: int) -> float:
    grams = [tuple(toks[i : i + n]) for toks in map(_tokens, texts) for i in range(len(toks) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def distinct_1(texts: list[str]) -> float:
    return distinct_n(texts, 1)


def distinct_2(texts: list[str]) -> float:
    return distinct_n(texts, 2)


def self_bleu(texts: list[str]) -> float:
    from sacrebleu.metrics import BLEU

    texts = [t for t in texts if t.strip()]
    if len(texts) < 2:
        return 0.0
    bleu = BLEU(effective_order=True)
    scores = [bleu.sentence_score(t, texts[:i] + texts[i + 1 :]).score for i, t in enumerate(texts)]
    return sum(scores) / len(scores) / 100.0
