"""Supervised warm-up: the policy every GRPO run of a card starts from (cached by the DAG).

Its own module so that the warm-up's cache depends on this code only: editing the GRPO trainer
reruns the GRPO cells, not the warm-up they share.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from entrobench.progress import Progress
from entrobench.protocols.rlvr.model import response_logits, sample
from entrobench.protocols.rlvr.task import Addition


def warmup(policy: torch.nn.Module, task: Addition, config: dict, progress: Progress) -> dict:
    """Train on (prompt, answer) pairs, loss on answer tokens only, until sampled pass@1 on
    training-distribution prompts reaches the target (checked every few steps from a minimum)."""
    data_gen, check_gen, sample_gen = (torch.Generator().manual_seed(s) for s in (0, 1, 2))
    check_pairs = task.sample_pairs(config["warmup_check_prompts"], check_gen)
    opt = torch.optim.AdamW(policy.parameters(), lr=config["warmup_lr"])
    history, pass1, step = [], 0.0, 0
    policy.train()
    start = time.perf_counter()
    while step < config["warmup_max_steps"]:
        pairs = task.sample_pairs(config["warmup_batch"], data_gen)
        prompts, answers = task.prompts(pairs), task.answers(pairs)
        logits = response_logits(policy, prompts, torch.ones_like(prompts), answers, 1.0)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), answers.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step >= config["warmup_min_steps"] and step % config["warmup_check_every"] == 0:
            responses, _, _ = sample(policy, *task.encode(check_pairs), task.answer_len, 1.0, sample_gen)
            pass1 = float(task.rewards(check_pairs, responses).mean())
            history.append((step, loss.item(), pass1))
            progress.update(step, config["warmup_max_steps"], f"loss {loss.item():.3f} sampled pass@1 {pass1:.3f}")
            if pass1 >= config["warmup_target_pass1"]:
                break
    return {"steps": step, "pass1": pass1, "target_reached": pass1 >= config["warmup_target_pass1"],
            "wall_s": time.perf_counter() - start, "history": history}
