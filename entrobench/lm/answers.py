"""Reading answers out of a language model's free-form text (verifiers of every LM family).

Numbers: "answer is N" if present, else the last number in the text. Small models echo the
operands before answering, so the first number is usually wrong.
"""
from __future__ import annotations

import re

_ANSWER_IS = re.compile(r"answer is\s*\$?\s*(-?[\d,]*\.?\d+)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*\.?\d*")


def extract_number(text: str) -> float | None:
    found = _ANSWER_IS.search(text)
    raw = found.group(1) if found else (_NUMBER.findall(text) or [None])[-1]
    if raw is None:
        return None
    try:
        return float(raw.replace(",", "").rstrip("."))
    except ValueError:
        return None
