"""Lp-Reg (low-probability regularization), from "Low-probability Tokens Sustain Exploration in
Reinforcement Learning with Verifiable Reward" (Huang, Xu, et al., 2025). Paper: arXiv 2510.03222.
Reference code: github.com/CarlanLark/Lp-Reg-dev (verl/trainer/ppo/core_algos.py,
compute_policy_loss_lp_reg; recipe/lp_reg/*.sh).

The paper's diagnosis: RL with verifiable rewards extinguishes rare but useful tokens ("reasoning
sparks"), because a wrong answer pushes down every token it contains, most of all the unlikely
ones. Lp-Reg shields them. Its target is a proxy of the policy with the noise taken out: the
min-p filter keeps the tokens with p >= kappa * max p and renormalizes,
    pi_proxy(v) = pi(v) / sum_{u kept} pi(u)   for kept v, 0 otherwise,
so every kept token's proxy probability is above its policy probability. Among the response
tokens with a negative advantage, the `neg_frac` share with the lowest log-probability are
candidates; those the proxy keeps (its log-probability is above the policy's) get a KL pull
toward the proxy in place of the PPO clip:
    loss_t = -r_t A_t + kl_coef * k3(logp_t, log pi_proxy(y_t))    (selected tokens)
    loss_t = PPO clipped surrogate                                  (every other token)
k3 is the low-variance KL estimate exp(x) - x - 1, x = log pi_proxy - logp (verl's low_var_kl,
base.k3_kl). Tokens the filter drops (pi_proxy = 0: presumed noise) are never pulled up.

As in the reference code: the selection is over the minibatch's tokens with A < 0 (positive ones
are left alone: the recipes set logp_pos_k_percent = 0); the count is int(neg_frac * n) and the
rule acts only when it is at least 2 (the reference's `if k > 1`); the selected tokens' policy
term is unclipped; k3 is clamped as verl's low_var_kl (base.k3_kl, `kl_clamp`).

Which policy the proxy filters (`proxy`):
- "rollout" (default): the policy that sampled the batch, the recipes' minp_old_log_prob=True:
  the reference code runs the actor once more before the update (compute_minp_log_prob) and
  keeps the min-p filtered log-prob of each sampled token; here `rollout_features` computes it
  from the sampling logits, so every minibatch of a rollout batch pulls toward the same target.
- "current": the policy being updated, detached (the reference's minp_old_log_prob=False, and
  this suite's behaviour before the option existed): on the first minibatch the two agree; on
  later ones the target moves with the policy.

Units: `neg_frac` is a fraction (the recipes' logp_neg_k_percent = 0.01 multiplies the count
directly, so it means 1 %, despite its name); `kappa` is the recipes' minp_p_threshold, a ratio
to the top token's probability; `kl_coef` is loss units per nat (ppo_kl_coef = 1). The recipes'
PPO clip is 1.0 below and 9.0 above (ratio in [0, 10]), the defaults here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from methods.registry import register
from methods.rlvr.base import ClipParams, PolicyBatch, PolicyLoss, TokenLoss, check_range, clipped_surrogate, k3_kl, policy_ratio

PROXIES = ("rollout", "current")  # which policy's distribution the min-p proxy filters (module docstring)
ROUNDING = 1e-6  # nats: a proxy this close to the policy dropped nothing (the renormalizing sum rounds)


@torch.no_grad()
def proxy_logp(logits: torch.Tensor, logp: torch.Tensor, kappa: float) -> torch.Tensor:
    """log pi_proxy of the sampled tokens (whose log pi is `logp`) under the min-p filtered,
    renormalized policy; -inf where the filter drops the token: (B, T, V), (B, T) -> (B, T)."""
    log_kappa = math.log(kappa) if kappa > 0 else -math.inf
    all_logp = logits.detach().log_softmax(-1)
    floor = all_logp.max(-1).values + log_kappa  # log(kappa * max p)
    kept_mass = torch.where(all_logp >= floor[..., None], all_logp, torch.full_like(all_logp, -math.inf)).logsumexp(-1)
    logp = logp.detach()
    return torch.where(logp >= floor, logp - kept_mass, torch.full_like(logp, -math.inf))


def select_low_probability(logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, frac: float) -> torch.Tensor:
    """The int(frac * n) lowest-logp response tokens among the n with a negative advantage, none
    unless that count is at least 2 (reference rule): (B, T) -> (B, T) bool."""
    negative = (mask & (advantages[:, None] < 0)).flatten()
    chosen = torch.zeros_like(negative)
    count = int(frac * int(negative.sum()) + 1e-9)
    if count > 1:
        ranked = torch.where(negative, logp.detach().flatten(), torch.full_like(negative, torch.inf, dtype=logp.dtype))
        chosen[torch.topk(ranked, count, largest=False).indices] = True
    return chosen.view_as(logp)


@register("rlvr/lp_reg")
class LpReg(PolicyLoss):
    @dataclass(frozen=True)
    class Params(ClipParams):
        eps_low: float = 1.0  # PPO ratio clip below at 1 - eps_low, dimensionless (recipes: clip_ratio_low=1.0)
        eps_high: float = 9.0  # PPO ratio clip above at 1 + eps_high, dimensionless (recipes: clip_ratio_high=9.0)
        aggregation: str = "token_mean"  # recipes loss_agg_mode token-mean
        neg_frac: float = 0.01  # fraction of the negative-advantage tokens, lowest logp first (recipes logp_neg_k_percent)
        kappa: float = 0.02  # min-p ratio of the proxy: keep p >= kappa * max p (recipes minp_p_threshold)
        kl_coef: float = 1.0  # weight of the KL pull to the proxy, loss units per nat (recipes ppo_kl_coef=1)
        proxy: str = "rollout"  # "rollout": the sampling policy's (recipes minp_old_log_prob=True); "current": the updated one's
        kl_clamp: bool = True  # k3 clamped as verl's low_var_kl (the recipes' kl_type), base.k3_kl

        def __post_init__(self):
            super().__post_init__()
            check_range(self, "neg_frac", 0.0, 1.0)
            check_range(self, "kappa", 0.0, 1.0)
            check_range(self, "kl_coef", 0.0, float("inf"))
            if self.proxy not in PROXIES:
                raise ValueError(f"LpReg.Params.proxy must be one of {PROXIES}, got {self.proxy!r}")

    def requires(self) -> frozenset[str]:
        return frozenset({"rollout_logits"} if self.params.proxy == "rollout" else {"logits"})

    def rollout_features(self, logits: torch.Tensor, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """log pi_proxy of each sampled token under the sampling policy's min-p filtered distribution."""
        logp = logits.detach().log_softmax(-1).gather(-1, tokens[..., None]).squeeze(-1)
        return {"proxy_logp": proxy_logp(logits, logp, self.params.kappa)}

    def token_loss(self, batch: PolicyBatch, cov: torch.Tensor) -> TokenLoss:
        p = self.params
        loss, clipped = clipped_surrogate(batch.logp, batch.logp_old, batch.advantages, p.eps_low, p.eps_high, p.dual_clip_c)
        if p.proxy == "rollout":
            if "proxy_logp" not in batch.rollout:
                raise ValueError("rlvr/lp_reg with proxy 'rollout' needs PolicyBatch.rollout['proxy_logp'], from "
                                 "rollout_features() on the sampling policy's logits (or set proxy: current)")
            target = batch.rollout["proxy_logp"]
        elif batch.logits is None:
            raise ValueError("rlvr/lp_reg with proxy 'current' builds its proxy from the policy's logits: PolicyBatch.logits is required")
        else:
            target = proxy_logp(batch.logits, batch.logp, p.kappa)
        below_proxy = batch.logp.detach() < target - ROUNDING  # the proxy dropped something, so it raises this token
        selected = select_low_probability(batch.logp, batch.advantages, batch.mask, p.neg_frac) & below_proxy
        target = torch.where(selected, target, batch.logp.detach())  # no -inf reaches the loss: k3 is 0 off the selection
        pulled = -policy_ratio(batch.logp, batch.logp_old) * batch.advantages[:, None] + p.kl_coef * k3_kl(batch.logp, target, clamp=p.kl_clamp)
        return TokenLoss(torch.where(selected, pulled, loss), clipped & ~selected, selected)
