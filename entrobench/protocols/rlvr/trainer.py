"""The GRPO trainer: rollouts with a verifiable reward, then the method's loss over minibatches
(methods/rlvr/*, one `PolicyLoss` each).

One GRPO step = sample G responses for each of P prompts from the current policy, score them
with the verifier, normalize rewards within each group, then `minibatches x ppo_epochs`
optimizer steps on the method's loss, against the log-probs the sampling policy gave them.
With `micro_batches` > 1 each minibatch is cut into that many micro-batches of whole sequences,
the loss (and a variant's token selection) is computed per micro-batch and the gradients are
accumulated with weight (micro-batch sequences / minibatch sequences), as verl's actor does
(dp_actor.update_policy); 1 computes it over the whole minibatch.
Every random draw comes from a generator the trainer owns (prompts, rollouts, the method's
own choices), so a run is a function of its seed, and `state_dict()` holds everything needed
to resume it exactly.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch

from entrobench.progress import Progress
from entrobench.protocols.rlvr.model import response_logits, sample, token_logp
from methods.rlvr.base import PolicyBatch, PolicyLoss, group_advantages, k3_kl, masked_mean, token_covariance, token_entropy

# Per-step curves every run records (the method's loss logs are averaged over its minibatches).
CURVES = ("entropy", "reward", "accuracy", "cov_mean", "clip_frac", "selected_frac", "kl_ref", "ppo_kl",
          "response_len", "pg_loss", "grad_norm", "rollout_s", "update_s")


@dataclass
class Rollout:
    prompts: torch.Tensor  # (B, P) tokens, left-padded, each prompt repeated G times, groups contiguous
    prompt_mask: torch.Tensor  # (B, P) 0 on padding
    responses: torch.Tensor  # (B, L) sampled tokens, padded after their end
    rewards: torch.Tensor  # (B,) verifier's 0/1
    advantages: torch.Tensor  # (B,)
    logp_old: torch.Tensor  # (B, L) under the sampling policy
    logp_ref: torch.Tensor  # (B, L) under the reference (warm-up) policy
    mask: torch.Tensor  # (B, L) bool, response tokens (up to and including the end token)
    features: dict[str, torch.Tensor]  # name -> (B, L): the method's rollout_features of the sampling logits


class GRPOTrainer:
    def __init__(self, policy: torch.nn.Module, reference: torch.nn.Module, task, method: PolicyLoss,
                 protocol, setting, seed: int, method_generator: torch.Generator):
        self.policy, self.reference, self.task, self.method = policy, reference, task, method
        self.protocol, self.setting = protocol, setting
        self.reference.requires_grad_(False)
        self.opt = torch.optim.AdamW(policy.parameters(), lr=protocol.lr, betas=(protocol.beta1, protocol.beta2), weight_decay=protocol.weight_decay)
        ramp = protocol.lr_warmup_updates
        self.lr_schedule = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda update: min(1.0, (update + 1) / ramp) if ramp else 1.0)
        # one stream per purpose: evaluating (or not) never shifts the prompts or the rollouts
        self.generators = {
            "prompts": torch.Generator().manual_seed(1000 * seed + 1),
            "rollout": torch.Generator().manual_seed(1000 * seed + 2),
            "method": method_generator,
        }
        self.step = 0
        self.curves: dict[str, list[float]] = {name: [] for name in CURVES}

    # -- checkpointable state: everything a resumed run needs to continue bit for bit

    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "policy": self.policy.state_dict(),
            "optimizer": self.opt.state_dict(),
            "lr_schedule": self.lr_schedule.state_dict(),
            "generators": {name: g.get_state() for name, g in self.generators.items()},
            "curves": {name: list(values) for name, values in self.curves.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        self.step = state["step"]
        self.policy.load_state_dict(state["policy"])
        self.opt.load_state_dict(state["optimizer"])
        self.lr_schedule.load_state_dict(state["lr_schedule"])
        for name, g in self.generators.items():
            g.set_state(state["generators"][name])
        self.curves = {name: list(values) for name, values in state["curves"].items()}

    # -- one step

    @torch.no_grad()
    def rollout(self) -> Rollout:
        g, task = self.setting.group_size, self.task
        pairs = task.sample_pairs(self.protocol.prompts_per_step, self.generators["prompts"]).repeat_interleave(g)
        prompts, prompt_mask = task.encode(pairs)
        responses, mask, logits = sample(self.policy, prompts, prompt_mask, task.max_new_tokens, self.setting.temperature,
                                         self.generators["rollout"], task.eos_id)
        rewards = task.rewards(pairs, responses, mask)
        logp_old = token_logp(logits, responses)
        logp_ref = token_logp(response_logits(self.reference, prompts, prompt_mask, responses, self.setting.temperature), responses)
        features = self.method.rollout_features(logits, responses) if "rollout_logits" in self.method.requires() else {}
        out = Rollout(prompts, prompt_mask, responses, rewards, group_advantages(rewards, g), logp_old, logp_ref, mask, features)
        self._log(entropy=masked_mean(token_entropy(logits), mask).item(), reward=rewards.mean().item(),
                  cov_mean=masked_mean(token_covariance(logp_old, out.advantages, mask), mask).item(),
                  kl_ref=masked_mean(k3_kl(logp_old, logp_ref), mask).item(), response_len=mask.sum(1).float().mean().item())
        return out

    def update(self, batch: Rollout) -> None:
        p = self.protocol
        size = len(batch.rewards) // p.minibatches  # whole groups per minibatch (spec checks divisibility)
        micro = size // p.micro_batches  # whole sequences per micro-batch (family.check checks divisibility)
        logs: dict[str, list[float]] = {}
        for _ in range(p.ppo_epochs):
            for start in range(0, len(batch.rewards), size):
                self.opt.zero_grad(set_to_none=True)
                for part_start in range(start, start + size, micro):
                    out = self.method.loss(self.policy_batch(batch, slice(part_start, part_start + micro)))
                    (out.loss * (micro / size)).backward()  # verl: loss x (micro-batch / minibatch sequences)
                    for key in ("clip_frac", "selected_frac", "ppo_kl", "pg_loss"):
                        logs.setdefault(key, []).append(out.logs[key])
                grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), p.grad_clip)
                self.opt.step()
                self.lr_schedule.step()
                logs.setdefault("grad_norm", []).append(float(grad_norm))
        self._log(**{key: sum(v) / len(v) for key, v in logs.items()})

    def policy_batch(self, batch: Rollout, part: slice) -> PolicyBatch:
        """The loss's view of sequences `part` of a rollout batch, with the current policy's logits."""
        logits = response_logits(self.policy, batch.prompts[part], batch.prompt_mask[part], batch.responses[part], self.setting.temperature)
        return PolicyBatch(logp=token_logp(logits, batch.responses[part]), logp_old=batch.logp_old[part], advantages=batch.advantages[part],
                           mask=batch.mask[part], logp_ref=batch.logp_ref[part], logits=logits,
                           rollout={name: value[part] for name, value in batch.features.items()})

    def train_step(self) -> None:
        t0 = time.perf_counter()
        batch = self.rollout()
        t1 = time.perf_counter()
        self.update(batch)
        t2 = time.perf_counter()
        self._log(rollout_s=t1 - t0, update_s=t2 - t1, accuracy=self._greedy_accuracy())
        self.step += 1

    def train(self, progress: Progress, after_step: Callable[[], None] = lambda: None) -> None:
        """Run the remaining steps (all of them, or those after a resumed state); `after_step` is
        the caller's hook, e.g. a checkpoint."""
        while self.step < self.protocol.steps:
            self.train_step()
            after_step()
            c = self.curves
            progress.update(self.step, self.protocol.steps, f"H {c['entropy'][-1]:.3f} R {c['reward'][-1]:.3f} acc {c['accuracy'][-1]:.3f}")

    def _greedy_accuracy(self) -> float:
        n = self.protocol.curve_eval_prompts
        if n == 0:
            return float("nan")
        pairs = self.task.eval_pairs[:n]
        responses, mask, _ = sample(self.policy, *self.task.encode(pairs), self.task.max_new_tokens, 0.0, None, self.task.eos_id)
        return float(self.task.rewards(pairs, responses, mask).mean())

    def _log(self, **values: float) -> None:
        for key, value in values.items():
            self.curves[key].append(float(value))
