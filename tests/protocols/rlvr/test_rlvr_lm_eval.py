"""The held-out evaluation through lm-eval: the policy's Hugging Face folder (its character
tokenizer round-trips the task's token ids), the tasks' scoring, and agreement with a plain torch
evaluator on a warmed-up tiny policy (greedy accuracy exactly, sampled metrics within noise)."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from entrobench.card import load_card
from entrobench.progress import Progress
from entrobench.protocols.rlvr import run
from entrobench.protocols.rlvr.evaluate import TASKS_DIR, evaluate_policy, k_values, majority_correct, pass_at_k
from entrobench.protocols.rlvr.hf_folder import save_policy
from entrobench.protocols.rlvr.model import build_policy, sample
from entrobench.protocols.rlvr.family import warmup_config
from entrobench.protocols.rlvr.task import EOS, VOCAB, Addition, char_tokenizer, decode, exact_answer
from entrobench.protocols.rlvr.warmup import warmup

REPO = Path(__file__).resolve().parents[3]
CARD = REPO / "configs" / "rlvr" / "clipcov_cui2025.yaml"

_spec = importlib.util.spec_from_file_location("rlvr_task_utils", TASKS_DIR / "utils.py")
utils = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(utils)


def test_tokenizer_ids_are_the_task_vocabulary_and_round_trip(tmp_path):
    task = Addition(3, 16)
    prompts = task.prompts(task.eval_pairs)
    texts = decode(prompts)
    fresh = char_tokenizer()
    policy = build_policy(1, 16, 2, task.prompt_len + task.answer_len, seed=0)
    save_policy(policy, task.hf_tokenizer(), tmp_path)
    from transformers import AutoTokenizer

    for tok in (fresh, AutoTokenizer.from_pretrained(tmp_path)):
        assert [tok.convert_tokens_to_ids(ch) for ch in VOCAB] == list(range(len(VOCAB)))
        assert tok.eos_token == tok.pad_token == EOS and tok.eos_token_id == len(VOCAB)
        encoded = [tok.encode(t, add_special_tokens=False) for t in texts]
        assert encoded == prompts.tolist()  # no BOS/EOS added, one id per character
        assert [tok.decode(ids) for ids in encoded] == texts
        assert tok.decode([0, 4, 8, 7]) == "0487"  # no spaces between tokens
        unknown = tok.encode("1 2", add_special_tokens=False)
        assert unknown == [1, len(VOCAB), 2]
    with pytest.raises(IndexError):  # the policy refuses it rather than reading another token
        policy(input_ids=torch.tensor([unknown]))


def test_scoring_uses_the_verifier_pass_at_k_and_majority():
    doc = {"prompt": "2+2=", "target": 4, "verifier": "exact"}
    scores = utils.score_samples(doc, [["05", "04", "4", "7"]])
    # maj@4 votes over answers, not strings: "04" and "4" are two votes for 4 (by string, "05" would win the tie)
    assert scores == {"pass_at_1": pass_at_k(4, 2, 1), "pass_at_2": pass_at_k(4, 2, 2), "pass_at_4": 1.0, "maj_at_4": 1.0}
    assert utils.score_answer(doc, ["04"]) == {"accuracy": 1.0}
    assert utils.score_answer(doc, ["4="]) == {"accuracy": 0.0}


# ---------------------------------------------------------------- agreement with a torch evaluator


@torch.no_grad()
def torch_evaluation(model, task: Addition, pairs: torch.Tensor, k: int, temperature: float, seed: int) -> dict[str, np.ndarray]:
    """The reference: greedy and sampled answers straight from the model (model.sample), scored by
    the same verifier; per-prompt values, so the test can size its tolerance."""
    model.eval()
    prompts, mask = task.encode(pairs)
    greedy = task.rewards(pairs, sample(model, prompts, mask, task.answer_len, 0.0, None)[0]).numpy()
    responses = sample(model, prompts.repeat_interleave(k, 0), mask.repeat_interleave(k, 0), task.answer_len, temperature,
                       torch.Generator().manual_seed(seed))[0]
    correct = task.rewards(pairs.repeat_interleave(k, 0), responses).view(-1, k).bool().tolist()
    texts = np.array([exact_answer(t) for t in decode(responses)], dtype=object).reshape(-1, k)
    per_prompt = {"accuracy": greedy}
    for kk in k_values(k):
        per_prompt[f"pass_at_{kk}"] = np.array([pass_at_k(k, sum(c), kk) for c in correct])
    per_prompt[f"maj_at_{k}"] = np.array([float(majority_correct(list(t), c)) for t, c in zip(texts, correct)])
    return per_prompt


@pytest.fixture(scope="module")
def tiny_policy():
    protocol = load_card(CARD).scale("tiny").protocol
    config = warmup_config(protocol, "addition")
    torch.manual_seed(0)
    task = run._task(config, {})
    policy = run._policy(config, task, {})
    warmup(policy, task, config, Progress("tiny warm-up"))
    return task, policy


@pytest.mark.slow
def test_lm_eval_agrees_with_a_torch_evaluator_on_a_trained_policy(tiny_policy):
    task, policy = tiny_policy
    pairs = torch.arange(task.n_pairs).repeat(4)  # all 100 one-digit pairs, 4 times: 400 prompts
    k = 8
    metrics, samples = evaluate_policy(policy, task, k, 1.0, seed=0, batch_size=512, pairs=pairs)
    reference = torch_evaluation(policy, task, pairs, k, 1.0, seed=0)

    assert set(metrics) == set(reference) == {"accuracy", "pass_at_1", "pass_at_2", "pass_at_4", "pass_at_8", "maj_at_8"}
    assert metrics["accuracy"] == pytest.approx(reference["accuracy"].mean(), abs=1e-12)  # greedy: the same answers
    greedy = [s for s in samples if s["task"] == "eb_rlvr_addition_greedy"]
    ref_answers = decode(sample(policy, *task.encode(pairs[: len(greedy)]), task.answer_len, 0.0, None)[0])
    assert [s["responses"] for s in greedy] == [[a] for a in ref_answers]
    assert 0.05 < metrics["pass_at_1"] < 0.95  # a policy that sometimes fails: agreement is not trivial
    for name, values in reference.items():
        # two independent draws of the same per-prompt quantities: 4 standard errors of their difference
        tolerance = 4 * math.sqrt(2) * values.std() / math.sqrt(len(values)) + 1e-9
        assert abs(metrics[name] - values.mean()) < tolerance, (name, metrics[name], values.mean(), tolerance)
    sampled = [s for s in samples if s["task"] == "eb_rlvr_addition"]
    assert len(sampled) == 64 and all(len(s["responses"]) == k for s in sampled)


@pytest.mark.slow
def test_same_seed_same_numbers_other_seed_other_samples(tiny_policy):
    task, policy = tiny_policy
    first, samples_a = evaluate_policy(policy, task, 4, 1.0, seed=3, batch_size=64)
    again, samples_b = evaluate_policy(policy, task, 4, 1.0, seed=3, batch_size=64)
    _, samples_c = evaluate_policy(policy, task, 4, 1.0, seed=4, batch_size=64)
    assert first == again and samples_a == samples_b
    assert samples_a != samples_c
