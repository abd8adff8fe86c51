"""Parity on one fixed batch, fp32, one micro-batch: the engine (TRL's GRPOTrainer) with our loss
modules gives the loss and the gradient of the engine's own implementation of the same loss
where it has one (GRPO token-mean and sequence-mean, clip-higher, dual-clip, GRPO + k3 KL), and
of the suite's own trainer (all of those, and Clip-Cov, KL-Cov and Lp-Reg, which TRL lacks).

TRL's `delta` (two-sided clipping) is dual-clip PPO's bound c whenever c > 1 + eps_high: both cap
a negative-advantage token's loss at -c A and zero its gradient there.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch

import trl

from entrobench.protocols.rlvr.engine import PolicyLossTrainer
from entrobench.protocols.rlvr.model import response_logits, token_logp
from methods import registry
from methods.rlvr.base import PolicyBatch, group_advantages

B, G, PROMPT, LENGTH = 8, 4, 5, 6
TOL = {"rtol": 1e-6, "atol": 1e-6}


@pytest.fixture(scope="module")
def batch(tiny_chat_lm):
    """Prompts of equal length (no padding), completions of different lengths, logp_old and the
    reference's log-probs a little off the policy, advantages of two groups of four."""
    from transformers import AutoModelForCausalLM

    g = torch.Generator().manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_chat_lm, dtype=torch.float32)
    vocab = model.config.vocab_size
    prompt_ids, completion_ids = torch.randint(3, vocab, (B, PROMPT), generator=g), torch.randint(3, vocab, (B, LENGTH), generator=g)
    lengths = torch.tensor([6, 2, 4, 6, 1, 5, 3, 6])
    mask = (torch.arange(LENGTH)[None] < lengths[:, None]).long()
    with torch.no_grad():
        logp = token_logp(response_logits(model, prompt_ids, torch.ones_like(prompt_ids), completion_ids, 1.0), completion_ids)
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0])
    return {
        "prompt_ids": prompt_ids, "prompt_mask": torch.ones_like(prompt_ids), "completion_ids": completion_ids, "completion_mask": mask,
        "advantages": group_advantages(rewards, G),
        "old_per_token_logps": logp + 0.4 * torch.randn(B, LENGTH, generator=g),  # off-policy: clips of both kinds are active
        "ref_per_token_logps": logp + 0.3 * torch.randn(B, LENGTH, generator=g),
        "num_items_in_batch": mask.sum(),
    }


def _trainer(cls, folder, tmp_path, **kwargs):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = {"loss_type": "bnpo", "beta": 0.0, **{k: v for k, v in kwargs.items() if k != "policy_loss"}}
    args = trl.GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=B, num_generations=G, max_completion_length=LENGTH,
                          use_cpu=True, bf16=False, gradient_checkpointing=False, report_to="none", disable_dropout=True, **config)
    extra = {"policy_loss": kwargs["policy_loss"]} if "policy_loss" in kwargs else {}
    trainer = cls(model=AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32), reward_funcs=lambda completions, **_: [0.0] * len(completions),
                  args=args, train_dataset=Dataset.from_dict({"prompt": ["x"] * B}), processing_class=AutoTokenizer.from_pretrained(folder), **extra)
    trainer.current_gradient_accumulation_steps = 1
    trainer.model.train()
    return trainer


def _loss_and_grad(trainer, inputs) -> tuple[torch.Tensor, torch.Tensor]:
    trainer.model.zero_grad(set_to_none=True)
    loss = trainer._compute_loss(trainer.model, dict(inputs))
    loss.backward()
    return loss.detach(), torch.cat([p.grad.flatten() for p in trainer.model.parameters()])


def _ours(folder, method, inputs) -> tuple[torch.Tensor, torch.Tensor]:
    """The suite's trainer's update step (trainer.GRPOTrainer.policy_batch, then the method's loss)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).train()
    logits = response_logits(model, inputs["prompt_ids"], inputs["prompt_mask"], inputs["completion_ids"], 1.0)
    features = method.rollout_features(logits.detach(), inputs["completion_ids"]) if "rollout_logits" in method.requires() else {}
    batch = PolicyBatch(logp=token_logp(logits, inputs["completion_ids"]), logp_old=inputs["old_per_token_logps"], advantages=inputs["advantages"],
                        mask=inputs["completion_mask"].bool(), logp_ref=inputs["ref_per_token_logps"], logits=logits, rollout=features)
    loss = method.loss(batch).loss
    loss.backward()
    return loss.detach(), torch.cat([p.grad.flatten() for p in model.parameters()])


def _method(name: str, seed: int = 7, **params):
    cls = registry.get(name)
    return cls(cls.Params(**params), generator=torch.Generator().manual_seed(seed))


# (our method and params, TRL's own arguments for the same loss)
TRL_HAS = {
    "grpo_token_mean": (("rlvr/grpo", {}), {"loss_type": "bnpo", "epsilon": 0.2}),
    "grpo_seq_mean": (("rlvr/grpo", {"aggregation": "seq_mean"}), {"loss_type": "grpo", "epsilon": 0.2}),
    "clip_higher": (("rlvr/clip_higher", {}), {"loss_type": "bnpo", "epsilon": 0.2, "epsilon_high": 0.28}),
    "dual_clip": (("rlvr/grpo", {"dual_clip_c": 1.5}), {"loss_type": "bnpo", "epsilon": 0.2, "delta": 1.5}),
    # TRL 1.16 multiplies the KL by the ratio by default (DeepSeek-V3.2); DeepSeekMath's k3 is without
    "grpo_kl": (("rlvr/kl", {"beta": 0.04}), {"loss_type": "bnpo", "epsilon": 0.2, "beta": 0.04, "use_bias_correction_kl": False}),
}


@pytest.mark.parametrize("case", list(TRL_HAS))
def test_our_loss_through_the_engine_equals_the_engines_own_and_our_trainers(case, batch, tiny_chat_lm, tmp_path):
    (name, params), trl_args = TRL_HAS[case]
    theirs = _loss_and_grad(_trainer(trl.GRPOTrainer, tiny_chat_lm, tmp_path / "trl", **trl_args), batch)
    engine = _trainer(PolicyLossTrainer, tiny_chat_lm, tmp_path / "ours", policy_loss=_method(name, **params))
    ours = _loss_and_grad(engine, batch)
    assert theirs[1].abs().sum() > 0  # a batch with a gradient: the comparison is not vacuous
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, **TOL)
    for a, b in zip(ours, _ours(tiny_chat_lm, _method(name, **params), batch)):
        torch.testing.assert_close(a, b, **TOL)
    assert engine._metrics["train"]["eb/clip_frac"][-1] > 0  # our loss's logs reach the engine's log


@pytest.mark.parametrize("name, params", [("rlvr/clip_cov", {"cov_lb": 0.0, "detach_frac": 0.2}), ("rlvr/kl_cov", {"top_frac": 0.2}),
                                          ("rlvr/lp_reg", {"neg_frac": 0.5, "kappa": 0.5, "proxy": "current"}),
                                          ("rlvr/lp_reg", {"neg_frac": 0.5, "kappa": 0.5})])
def test_losses_the_engine_lacks_equal_our_trainers_through_the_engine(name, params, batch, tiny_chat_lm, tmp_path):
    """Clip-Cov draws its tokens from the method's generator: both runs start from the same seed."""
    engine = _trainer(PolicyLossTrainer, tiny_chat_lm, tmp_path, policy_loss=_method(name, **params))
    inputs = dict(batch)
    if "rollout_logits" in engine.needs:  # the engine computes the sampling policy's features at generation time
        with torch.no_grad():
            logits = engine._policy_logits(engine.model, torch.cat([batch["prompt_ids"], batch["completion_ids"]], 1),
                                           torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1), LENGTH)
        inputs.update({f"eb_rollout_{k}": v for k, v in engine.policy_loss.rollout_features(logits, batch["completion_ids"]).items()})
    ours_engine = _loss_and_grad(engine, inputs)
    ours_trainer = _ours(tiny_chat_lm, _method(name, **params), batch)
    assert ours_trainer[1].abs().sum() > 0
    assert engine._metrics["train"]["eb/selected_frac"][-1] > 0  # the variant's own rule acted on this batch
    for a, b in zip(ours_engine, ours_trainer):
        torch.testing.assert_close(a, b, **TOL)


def test_the_micro_batch_split_maps_onto_the_engines_accumulation():
    from entrobench.protocols.rlvr.engine import engine_args
    from entrobench.protocols.rlvr.family import Protocol, Setting

    p = Protocol(model="m", engine="trl", prompts_per_step=256, minibatches=8, micro_batches=8, ppo_epochs=1, steps=10)
    args = engine_args(p, Setting(name="g8"), seed=0, out=None, world=8, needs=frozenset())
    # 2048 sequences: 8 minibatches of 256 over 8 GPUs = 32 per GPU, in 8 micro-batches of 4
    assert (args["per_device_train_batch_size"], args["gradient_accumulation_steps"], args["steps_per_generation"]) == (4, 8, 64)
    assert args["max_steps"] == 80 and args["beta"] == 0.0
    with pytest.raises(ValueError, match="do not split into 8 minibatches x 3 micro-batches on 8 processes"):
        engine_args(dataclasses.replace(p, micro_batches=3), Setting(name="g8"), seed=0, out=None, world=8, needs=frozenset())
