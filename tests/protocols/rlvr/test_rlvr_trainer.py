"""The GRPO trainer on the tiny card's protocol: deterministic per seed, resumable from its state
dict bit for bit, and the run a cell records (curves, metrics, a KL-Cov schedule warning)."""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import torch

from entrobench.card import load_card
from entrobench.family import BuildRun, CellRun
from entrobench.progress import Progress
from entrobench.protocols.rlvr import run
from entrobench.protocols.rlvr.family import warmup_config
from entrobench.protocols.rlvr.model import build_policy
from entrobench.protocols.rlvr.task import Addition
from entrobench.protocols.rlvr.trainer import CURVES, GRPOTrainer
from methods import registry

REPO = Path(__file__).resolve().parents[3]
CARD = REPO / "configs" / "rlvr" / "clipcov_cui2025.yaml"


@pytest.fixture(scope="module")
def tiny():
    return load_card(CARD).scale("tiny")


@pytest.fixture(scope="module")
def warm(tiny, tmp_path_factory):
    """The tiny card's warm-up folder, trained once for this module."""
    out = tmp_path_factory.mktemp("warmup")
    run.train_warmup(BuildRun(config=warmup_config(tiny.protocol, "addition"), inputs={}, out=out, data_root=None, progress=Progress("test", every_s=1e9)))
    return out


def _cell(config: dict, warm: Path, method: str) -> CellRun:
    return CellRun(config=config, inputs={"warmup": warm}, data_root=None, method_cls=registry.get(f"rlvr/{method}"), progress=Progress("test", every_s=1e9))


def _trainer(tiny, warm_path, method: str, seed: int = 0, **protocol_changes) -> GRPOTrainer:
    protocol = dataclasses.replace(tiny.protocol, **protocol_changes)
    task = Addition(protocol.digits, protocol.held_out)
    start = torch.load(warm_path / run.WARMUP_FILE, weights_only=True)
    policy, reference = (build_policy(protocol.n_layer, protocol.d_model, protocol.n_head, task.prompt_len + task.answer_len, 0) for _ in range(2))
    policy.load_state_dict(start["state_dict"])
    reference.load_state_dict(start["state_dict"])
    _, params = tiny.method_params(method)
    cls = registry.get(f"rlvr/{method}")
    loss = cls(params, generator=torch.Generator().manual_seed(seed + 3))
    return GRPOTrainer(policy, reference, task, loss, protocol, tiny.settings[0], seed, loss.generator)


def test_warmup_reaches_a_policy_that_sometimes_answers_right(warm):
    meta = torch.load(warm / run.WARMUP_FILE, weights_only=True)
    assert meta["steps"] >= 20
    assert 0 < meta["eval"]["pass_at_4"] <= 1  # something to reinforce


def test_same_seed_same_run_other_seed_other_run(tiny, warm):
    a, b, c = (_trainer(tiny, warm, "clip_cov", seed=s) for s in (0, 0, 1))
    for t in (a, b, c):
        for _ in range(3):
            t.train_step()
    assert a.curves["reward"] == b.curves["reward"] and a.curves["entropy"] == b.curves["entropy"]
    assert a.curves["entropy"] != c.curves["entropy"]


def test_resume_from_state_dict_continues_bit_for_bit(tiny, warm):
    straight = _trainer(tiny, warm, "clip_cov")
    for _ in range(4):
        straight.train_step()
    first = _trainer(tiny, warm, "clip_cov")
    for _ in range(2):
        first.train_step()
    state = copy.deepcopy(first.state_dict())
    resumed = _trainer(tiny, warm, "clip_cov", seed=5)  # other seed: everything must come from the state
    resumed.load_state_dict(state)
    for _ in range(2):
        resumed.train_step()
    timing = {"rollout_s", "update_s"}
    assert resumed.step == straight.step == 4
    assert {k: v for k, v in resumed.curves.items() if k not in timing} == {k: v for k, v in straight.curves.items() if k not in timing}
    for name, value in straight.policy.state_dict().items():
        assert torch.equal(value, resumed.policy.state_dict()[name]), name


def test_lr_ramps_up_linearly_over_the_first_updates(tiny, warm):
    trainer = _trainer(tiny, warm, "grpo", lr_warmup_updates=4, minibatches=2)
    lrs = []
    for _ in range(3):  # 2 updates per step
        lrs.append(trainer.opt.param_groups[0]["lr"])
        trainer.train_step()
    assert lrs == pytest.approx([tiny.protocol.lr * f for f in (0.25, 0.75, 1.0)])


def test_a_step_logs_every_curve_and_the_reference_stays_put(tiny, warm):
    trainer = _trainer(tiny, warm, "kl")
    before = {k: v.clone() for k, v in trainer.reference.state_dict().items()}
    trainer.train_step()
    assert all(len(trainer.curves[name]) == 1 for name in CURVES)
    assert all(torch.equal(v, trainer.reference.state_dict()[k]) for k, v in before.items())
    assert trainer.curves["response_len"] == [2.0]  # 1-digit addition: 2 answer tokens


def test_run_cell_records_metrics_curves_and_the_kl_cov_warning(tiny, warm):
    config = {"protocol": {**dataclasses.asdict(tiny.protocol), "minibatches": 1}, "setting": dataclasses.asdict(tiny.settings[0]),
              "dataset": "addition", "seed": 0, "params": dataclasses.asdict(tiny.method_params("kl_cov")[1])}
    out = run.run_cell(_cell(config, warm, "kl_cov"))
    assert "fully on-policy" in out["warnings"][0]
    assert len(out["curves"]["entropy"]) == tiny.protocol.steps
    for name in ("pass_at_1", "pass_at_4", "maj_at_4", "entropy_ratio", "law_a", "law_b", "law_r2", "law_ceiling", "accuracy"):
        assert name in out["metrics"], name


def test_full_scale_cells_skip_with_a_reason_where_they_cannot_run(warm, tmp_path):
    full = load_card(CARD).scale("full")
    config = {"protocol": dataclasses.asdict(full.protocol), "setting": dataclasses.asdict(full.settings[0]),
              "dataset": "dapo_math_17k", "seed": 0, "params": {}, "method": "rlvr/grpo"}
    if not torch.cuda.is_available():
        with pytest.raises(run.Skip, match="rollout vllm needs GPUs and vLLM"):
            run.run_cell(_cell(config, warm, "grpo"))
    config["protocol"]["rollout"] = "hf"  # even without vLLM: nothing staged under this data root
    cell = dataclasses.replace(_cell(config, warm, "grpo"), data_root=tmp_path)
    with pytest.raises(run.Skip, match="math data not staged"):
        run.run_cell(cell)


def test_micro_batches_compute_the_loss_per_micro_batch_and_accumulate_as_verl(tiny, warm):
    """micro_batches 2: each minibatch's loss (and Clip-Cov's covariance and token draw) is computed
    on each half and the gradients summed with weight 1/2, which is not the minibatch's own loss."""
    trainer = _trainer(tiny, warm, "clip_cov", micro_batches=2, grad_clip=1e9)  # no norm clipping: gradients as computed
    batch = trainer.rollout()
    draws = trainer.method.generator.get_state()
    size = len(batch.rewards) // trainer.protocol.minibatches

    def gradient(loss) -> torch.Tensor:
        trainer.policy.zero_grad(set_to_none=True)
        loss.backward()
        return torch.cat([p.grad.flatten() for p in trainer.policy.parameters()])

    halves = gradient(sum(0.5 * trainer.method.loss(trainer.policy_batch(batch, slice(s, s + size // 2))).loss for s in (0, size // 2)))
    whole = gradient(trainer.method.loss(trainer.policy_batch(batch, slice(0, size))).loss)
    assert not torch.allclose(halves, whole)  # the unit matters: covariance centred and tokens drawn per half

    stepped = []  # the gradient each optimizer step would apply (the step itself is skipped)
    trainer.opt.step = lambda: stepped.append(torch.cat([p.grad.flatten().clone() for p in trainer.policy.parameters()]))
    trainer.method.generator.set_state(draws)  # the same token draws as for `halves`
    trainer.update(batch)
    assert len(stepped) == trainer.protocol.minibatches * trainer.protocol.ppo_epochs
    torch.testing.assert_close(stepped[0], halves, rtol=1e-6, atol=1e-8)


def test_a_micro_batch_count_that_does_not_divide_a_minibatch_is_a_card_error(tmp_path):
    import yaml

    from entrobench.card import CardError

    card = yaml.safe_load(CARD.read_text())
    card["scales"]["tiny"]["protocol"]["micro_batches"] = 3  # 4 prompts x 8 / 2 minibatches = 16 sequences
    (tmp_path / "rlvr").mkdir()
    path = tmp_path / "rlvr" / CARD.name
    path.write_text(yaml.safe_dump(card))
    with pytest.raises(CardError, match=r"scales.tiny: protocol.micro_batches \(3\) must divide the 16 sequences"):
        load_card(path, REPO / "configs")
