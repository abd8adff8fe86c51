"""The addition task and its verifier: formats, held-out split, and answers that look almost right."""
from __future__ import annotations

import pytest
import torch

from entrobench.protocols.rlvr.task import Addition, decode, verify


@pytest.mark.parametrize("response, target, ok", [
    ("0487", 487, True),
    ("487", 487, True),
    ("  487 ", 487, True),     # surrounding spaces
    ("+487", 487, True),       # an explicit plus sign
    ("000487", 487, True),     # leading zeros
    ("0000", 0, True),
    ("-487", 487, False),      # the wrong sign
    ("-0", 0, False),          # a sign the task never asks for
    ("48 7", 487, False),      # inner space
    ("4870", 487, False),
    ("0486", 487, False),
    ("", 0, False),
    ("+", 0, False),
    ("=487", 487, False),
    ("0+87", 87, False),       # vocabulary symbols inside the answer
    ("487=", 487, False),
])
def test_verifier_on_tricky_answers(response, target, ok):
    assert verify(response, target) is ok


def test_prompts_and_answers_are_zero_padded_characters():
    task = Addition(3, held_out=8)
    pairs = torch.tensor([37 * 1000 + 450, 999 * 1000 + 999, 0])
    assert decode(task.prompts(pairs)) == ["037+450=", "999+999=", "000+000="]
    assert decode(task.answers(pairs)) == ["0487", "1998", "0000"]
    assert task.rewards(pairs, task.answers(pairs)).tolist() == [1.0, 1.0, 1.0]
    wrong = task.answers(pairs).flip(1)
    assert task.rewards(pairs, wrong).tolist() == [0.0, 0.0, 1.0]  # "0000" reversed is still right


def test_training_prompts_never_hit_the_held_out_set():
    task = Addition(1, held_out=60)  # 100 pairs, 60 held out: collisions are certain without the check
    drawn = task.sample_pairs(5000, torch.Generator().manual_seed(0))
    assert not set(drawn.tolist()) & set(task.eval_pairs.tolist())
    assert len(set(drawn.tolist())) == 40


def test_held_out_set_does_not_depend_on_the_training_seed():
    assert torch.equal(Addition(3, 512).eval_pairs, Addition(3, 512).eval_pairs)
