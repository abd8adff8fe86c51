"""The math reward: is a response's final answer the reference answer? (math-verify, HF's library)

The final answer is read as the policy is trained to give it (math_data.INSTRUCTION): the text
after the last "Answer:" on its line, else the last \\boxed{...}; a response with neither has no
answer (reward 0), so a policy is not paid for a number it happened to mention on the way. The
two are then compared by `math_verify.verify` (symbolic equality through SymPy: 1/2 = 0.5 =
\\frac{1}{2}, \\sqrt{2} = 2^{1/2}, sets and intervals, units and "\\text{}" ignored), the verifier
TRL and open-r1 use, rather than DAPO's own string normalizer, which needs an exact match after
stripping. Each parse and comparison is cut at TIMEOUT_S (a policy's garbage can send SymPy into a
long search); math-verify times out by SIGALRM, which only a main thread can use, so elsewhere
(lm-eval may score in threads) it runs without.
"""
from __future__ import annotations

import re
import threading

TIMEOUT_S = 5  # seconds per parse and per comparison

_ANSWER_LINE = re.compile(r"Answer\s*:\s*(.+)", re.IGNORECASE)


def final_answer(response: str) -> str | None:
    """The response's final answer as text, or None: the last "Answer: X" line, else the last \\boxed{X}."""
    found = _ANSWER_LINE.findall(response)
    if found:
        return found[-1].strip().rstrip(".").strip().strip("$").strip() or None  # "Answer: $42$." -> "42"
    return last_boxed(response)


def last_boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} (nested braces kept), or None."""
    start = text.rfind("\\boxed")
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j].strip() or None
    return None


def is_correct(response: str, reference: str) -> bool:
    """Does the response's final answer equal the reference, symbolically?"""
    from math_verify import parse, verify

    answer = final_answer(response)
    if answer is None:
        return False
    timeout = TIMEOUT_S if threading.current_thread() is threading.main_thread() else None
    gold = parse(f"${reference}$", parsing_timeout=timeout)
    guess = parse(f"${answer}$", parsing_timeout=timeout)
    return bool(gold) and bool(guess) and verify(gold, guess, timeout_seconds=timeout)


def math_reward(completions: list[str], answer: list[str], **_) -> list[float]:
    """The engine's reward function (TRL calls it with the dataset's columns): 1.0 or 0.0 each."""
    return [float(is_correct(c, a)) for c, a in zip(completions, answer)]
