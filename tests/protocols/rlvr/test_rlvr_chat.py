"""The medium scale's path on a tiny chat model (tests/conftest.py): the chat addition task and its
free-form verifier, left-padded prompts, sampling that ends at EOS, the scoring pass agreeing with
the sampling pass, and one cell through the command line from a model folder under the data root."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from entrobench import cli, record
from entrobench.protocols.rlvr.model import load_pretrained, response_logits, sample, token_logp
from entrobench.protocols.rlvr.task import ChatAddition, check

REPO = Path(__file__).resolve().parents[3]
CARD = REPO / "configs" / "rlvr" / "clipcov_cui2025.yaml"


@pytest.mark.parametrize("response, target, ok", [
    ("93 + 10 = 103. The answer is 103.", 103, True),
    ("21 + 99 = 180. The answer is 180.", 120, False),
    ("The answer is 120, not 121.", 120, True),     # "answer is" wins over the last number
    ("21 + 99 = 120", 120, True),                   # no "answer is": the last number
    ("21 + 99 = 120 because 21 + 100 = 121", 120, False),
    ("The answer is 1,020.", 1020, True),
    ("", 0, False),
])
def test_free_form_verifier(response, target, ok):
    assert check("answer_is", response, target) is ok


@pytest.fixture(scope="module")
def chat(tiny_chat_lm):
    from transformers import AutoTokenizer

    task = ChatAddition(AutoTokenizer.from_pretrained(tiny_chat_lm), digits=2, held_out=50, max_new_tokens=12)
    return task, load_pretrained(str(tiny_chat_lm))


def test_chat_prompts_hold_the_worked_example_and_never_ask_it(chat):
    task, _ = chat
    example = (ChatAddition.EXAMPLE[0] - 10) * 90 + (ChatAddition.EXAMPLE[1] - 10)
    drawn = task.sample_pairs(20000, torch.Generator().manual_seed(0))
    assert example not in set(drawn.tolist()) | set(task.eval_pairs.tolist())
    assert not set(drawn.tolist()) & set(task.eval_pairs.tolist())
    a, b = task.operands(drawn)
    assert a.min() >= 10 and b.max() <= 99
    text = task.prompt_texts(torch.tensor([0]))[0]  # 10 + 10
    assert "34 + 51 = 85. The answer is 85." in text and text.endswith("10 + 10 =<|im_end|>\n<|im_start|>assistant\n")


class EosBias(torch.nn.Module):
    """The model with its EOS logit raised: an untrained model seldom ends a response by itself."""

    def __init__(self, model, eos_id: int, bias: float):
        super().__init__()
        self.model, self.eos_id, self.bias = model, eos_id, bias

    def forward(self, **kwargs):
        out = self.model(**kwargs)
        out.logits[..., self.eos_id] += self.bias
        return out


def test_sampling_ends_at_eos_and_the_scoring_pass_agrees(chat):
    task, model = chat
    model = EosBias(model, task.eos_id, 5.0)
    torch.manual_seed(0)
    pairs = task.sample_pairs(64, torch.Generator().manual_seed(1))
    prompts, prompt_mask = task.encode(pairs)
    assert (prompt_mask[:, 0] == 0).any() and prompt_mask[:, -1].all()  # left padding, and some rows are padded
    responses, mask, logits = sample(model, prompts, prompt_mask, task.max_new_tokens, 3.0, torch.Generator().manual_seed(0), task.eos_id)

    ended = (responses == task.eos_id) & mask
    assert ended.any() and not ended.any(1).all(), "every row should not end the same way: the checks below would be vacuous"
    for row, m, e in zip(responses, mask, ended):
        if e.any():
            stop = int(e.nonzero()[0])
            assert m[: stop + 1].all() and not m[stop + 1 :].any()  # EOS kept, nothing after it
            assert (row[stop:] == task.eos_id).all()
        else:
            assert m.all()
    # log-probs from the KV-cached sampling pass = those of one forward over prompt + response
    scored = response_logits(model, prompts, prompt_mask, responses, 3.0)
    torch.testing.assert_close(token_logp(scored, responses)[mask], token_logp(logits, responses)[mask], atol=1e-4, rtol=1e-4)
    # and padding does not change a prompt's logits (position ids count real tokens only)
    padded = int((prompt_mask[:, 0] == 0).nonzero()[0])
    alone, alone_mask = task.encode(pairs[padded : padded + 1])
    single = response_logits(model, alone, alone_mask, responses[padded : padded + 1], 3.0)
    torch.testing.assert_close(single[0][mask[padded]], scored[padded][mask[padded]], atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_tiny_chat_cell_through_the_command_line(tmp_path, tiny_chat_lm, monkeypatch):
    """The medium scale's protocol on the tiny chat model: the warm-up is an evaluation of the
    model as loaded, the cell trains from the folder and evaluates through lm-eval."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    card = yaml.safe_load(CARD.read_text())
    card["scales"]["tiny"].update(datasets=["addition_chat"])
    card["scales"]["tiny"]["protocol"].update(model="tiny_lm", digits=2, held_out=8, max_new_tokens=8, steps=2, prompts_per_step=2,
                                              eval_samples=2, eval_batch_size=16, curve_eval_prompts=4)
    configs = tmp_path / "configs" / "rlvr"
    configs.mkdir(parents=True)
    card_path = configs / CARD.name
    card_path.write_text(yaml.safe_dump(card))
    shutil.copytree(tiny_chat_lm, tmp_path / "data" / "tiny_lm")
    common = ["--card", str(card_path), "--scale", "tiny", "--data-root", str(tmp_path / "data")]

    warm = tmp_path / "warmup.pt"
    assert cli.main(["train-warmup", *common, "--dataset", "addition_chat", "--out", str(warm)]) == 0
    start = torch.load(warm, weights_only=True)
    assert start["status"] == "ok" and start["steps"] == 0 and "state_dict" not in start
    assert set(start["eval"]) == {"accuracy", "pass_at_1", "pass_at_2", "maj_at_2"}

    out = tmp_path / "cell.json"
    assert cli.main(["run-cell", *common, "--cell", "addition_chat/g8_t1/kl_cov/seed0", "--input", f"warmup={warm}", "--out", str(out)]) == 0
    rec = record.read(out)
    assert rec["status"] == record.OK, rec.get("reason")
    assert len(rec["curves"]["entropy"]) == 2 and all(0 < n <= 8 for n in rec["curves"]["response_len"])
    assert rec["metrics"]["accuracy_start"] == start["eval"]["accuracy"]
    sampled = [s for s in rec["samples"] if s["task"] == "eb_rlvr_addition"]
    assert sampled and all(len(s["responses"]) == 2 for s in sampled)
    assert "<|im_start|>assistant" in sampled[0]["prompt"]
    assert json.loads(json.dumps(rec["metrics"]))  # a plain JSON record
