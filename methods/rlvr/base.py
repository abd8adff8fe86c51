"""The loss side of GRPO, shared by every RLVR method: group-normalized advantages, the PPO
clipped surrogate, loss aggregation, the k3 KL to a reference policy, token entropy, and the
per-token covariance that Clip-Cov and KL-Cov select on.

GRPO: DeepSeekMath (Shao et al., 2024), arXiv 2402.03300, Eq. 3 (objective) and Eq. 4 (k3 KL).
PPO clipped surrogate: Schulman et al., 2017, arXiv 1707.06347, Eq. 7.
Covariance term: "The Entropy Mechanism of Reinforcement Learning for Reasoning Language Models"
(Cui et al., 2025), arXiv 2505.22617, Sec. 5; reference code github.com/PRIME-RL/Entropy-Mechanism-of-RL
(verl/trainer/ppo/core_algos.py).

Everything here is a pure function of tensors: no model, no sampling, no optimizer.

The contract, called by the RLVR protocol once per micro-batch (a whole minibatch unless the
protocol splits it, as the engines do):
    variant = Cls(Cls.Params(**card_params), generator=torch.Generator().manual_seed(seed))
    warning = Cls.schedule_warning(ppo_epochs, minibatches)   # str or None, before training
    needs = variant.requires()   # subset of REQUIREMENTS: what the trainer must compute for it
    features = variant.rollout_features(logits_old, tokens)   # at rollout, if "rollout_logits" in needs
    out = variant.loss(PolicyBatch(logp, logp_old, advantages, mask, logp_ref, logits=..., rollout=features))
    out.loss.backward()          # scalar; the optimizer step is the protocol's
    out.logs                     # {LOG_KEYS: float}, the per-step curves
    out.selected                 # (B, T) bool: tokens detached (Clip-Cov) or penalized (KL-Cov)

Shapes: B sequences (prompts x group size, each group contiguous), T response positions, V vocabulary.
Log-probabilities are of the sampled tokens, in nats.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

AGGREGATIONS = ("token_mean", "seq_mean")
# What a variant may need beyond logp, logp_old, advantages, mask and a (detached) entropy:
#   "logits"          the (B, T, V) logits with their gradient (entropy bonus, Lp-Reg's current-policy proxy)
#   "logp_ref"        the reference policy's log-probs (a KL term to the reference)
#   "rollout_logits"  the sampling policy's (B, T, V) logits at rollout time, turned into per-token
#                     features by `rollout_features` (Lp-Reg's proxy from the rollout policy)
# A trainer that can hand over less (an engine at a 7B model's vocabulary) computes only these.
REQUIREMENTS = ("logits", "logp_ref", "rollout_logits")
# What every variant logs, so the protocol can draw the same curves for every row of the table.
LOG_KEYS = ("loss", "pg_loss", "entropy", "clip_frac", "ppo_kl", "kl_ref", "cov_mean", "selected_frac")


# ---------------------------------------------------------------- advantages

def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-6) -> torch.Tensor:
    """A_i = (r_i - mean(group)) / (std(group) + eps) for each prompt's group: (B,) -> (B,).

    `rewards` holds the G = group_size samples of each prompt next to each other. The std is the
    sample std (Bessel-corrected, torch.std), as in verl's and TRL's GRPO; a group whose rewards are
    all equal gets advantage 0 and so no policy gradient. eps keeps that case finite.
    """
    if group_size < 2:
        raise ValueError(f"group_size must be >= 2 (a group's std needs two samples), got {group_size}")
    if rewards.dim() != 1 or rewards.numel() % group_size:
        raise ValueError(f"rewards must be (B,) with B a multiple of group_size={group_size}, got shape {tuple(rewards.shape)}")
    groups = rewards.view(-1, group_size)  # (B/G, G)
    if not groups.is_floating_point():  # 0/1 rewards may come as bool or int
        groups = groups.float()
    mean = groups.mean(1, keepdim=True)
    std = groups.std(1, keepdim=True)
    return ((groups - mean) / (std + eps)).view(-1)


# ---------------------------------------------------------------- per-token terms

def policy_ratio(logp: torch.Tensor, logp_old: torch.Tensor) -> torch.Tensor:
    """r_t = pi_theta(y_t) / pi_old(y_t) = exp(logp - logp_old): (B, T) -> (B, T)."""
    return torch.exp(logp - logp_old)


def clipped_surrogate(
    logp: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor, eps_low: float, eps_high: float,
    dual_clip_c: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token PPO loss -min(r A, clip(r, 1 - eps_low, 1 + eps_high) A) (PPO Eq. 7, as a loss).

    logp, logp_old (B, T); advantages (B,), one per sequence, broadcast over its tokens.
    Returns the loss (B, T) and `clipped` (B, T) bool: where a clip bound is the active branch,
    so the token gets no gradient. eps_low == eps_high is PPO/GRPO; eps_high > eps_low is DAPO's
    clip-higher.

    dual_clip_c > 1 adds dual-clip PPO's lower bound (Ye et al. 2020, arXiv 1912.09729, Eq. 5): for
    A < 0 the loss is capped at -c A, so a token whose ratio ran far above 1 cannot dominate the
    batch (verl's clip_ratio_c; 3 by default there, 10 in the entropy paper's recipes). 0: off.
    """
    adv = advantages[:, None]  # (B, 1)
    ratio = policy_ratio(logp, logp_old)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high) * adv
    loss, silenced = -torch.minimum(unclipped, clipped), clipped < unclipped
    if dual_clip_c > 0:
        capped = (adv < 0) & (loss > -dual_clip_c * adv)  # -c A > 0 where A < 0
        loss = torch.where(capped, (-dual_clip_c * adv).expand_as(loss), loss)
        silenced = silenced | capped
    return loss, silenced


K3_LOG_RATIO_BOUND = 20.0  # verl's low_var_kl: log-ratio clamped to [-20, 20] before exp (nats)
K3_BOUND = 10.0  # and the estimate to [-10, 10] (nats)


def k3_kl(logp: torch.Tensor, logp_ref: torch.Tensor, clamp: bool = False) -> torch.Tensor:
    """Per-token KL(pi_theta || pi_ref) estimate exp(ref - logp) - (ref - logp) - 1 (DeepSeekMath Eq. 4).

    Unbiased under samples from pi_theta and never negative (e^x >= 1 + x), unlike logp - ref.
    clamp=True is verl's "low_var_kl" (core_algos.kl_penalty): the log-ratio clamped to [-20, 20]
    before exp and the estimate to [-10, 10], so one token the policy has all but ruled out cannot
    blow up the loss; the gradient is 0 where a clamp is active. False: the plain estimator.
    """
    x = logp_ref - logp
    if clamp:
        x = x.clamp(-K3_LOG_RATIO_BOUND, K3_LOG_RATIO_BOUND)
        return (torch.exp(x) - x - 1.0).clamp(-K3_BOUND, K3_BOUND)
    return torch.exp(x) - x - 1.0


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """H_t = -sum_v p_v log p_v of softmax(logits), in nats: (B, T, V) -> (B, T)."""
    # log_softmax instead of log(softmax): exact where softmax underflows to 0.
    logp = logits.log_softmax(-1)
    return -(logp.exp() * logp).sum(-1)


@torch.no_grad()
def token_covariance(logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cov_t = (logp_t - mean logp) (A_t - mean A), centered over the batch's response tokens.

    arXiv 2505.22617, Sec. 5 (the quantity Clip-Cov and KL-Cov rank tokens by). Means are over
    tokens, not sequences, as in the reference code: a long response weighs more. Only used to
    select tokens, so it carries no gradient. (B, T) -> (B, T), 0 outside the mask; its masked
    mean is the batch covariance of logp and A that the paper tracks.
    """
    logp = logp.detach()
    adv = advantages.detach()[:, None].expand_as(logp)
    cov = (logp - masked_mean(logp, mask)) * (adv - masked_mean(adv, mask))
    return torch.where(mask, cov, torch.zeros_like(cov))


def fraction_count(frac: float, n: int) -> int:
    """How many of n tokens a fraction selects: floor(frac * n), at least 1 when frac > 0.

    At least one, as the reference code's max(1, int(...)). The 1e-9 guards float error:
    0.29 * 100 = 28.999... would otherwise select 28.
    """
    if frac <= 0 or n == 0:
        return 0
    return min(n, max(1, int(math.floor(frac * n + 1e-9))))


# ---------------------------------------------------------------- aggregation

def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of x over the True entries of mask (0 if there are none). where(), not x * mask:
    padding may hold inf or nan, and nan * 0 is nan."""
    return torch.where(mask, x, torch.zeros_like(x)).sum() / mask.sum().clamp_min(1)


def token_mean(per_token: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over all response tokens of the batch: each token weighs the same (DAPO, arXiv 2503.14476, Sec. 3.3)."""
    return masked_mean(per_token, mask)


def seq_mean(per_token: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over each sequence's tokens, then over sequences (GRPO Eq. 3): each response weighs
    the same, so a token of a short response weighs more. Sequences without response tokens
    are left out of the outer mean."""
    lengths = mask.sum(1)  # (B,)
    per_seq = torch.where(mask, per_token, torch.zeros_like(per_token)).sum(1) / lengths.clamp_min(1)
    has_tokens = lengths > 0
    return per_seq[has_tokens].sum() / has_tokens.sum().clamp_min(1)


_AGGREGATE = {"token_mean": token_mean, "seq_mean": seq_mean}


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """(B, T) per-token loss -> scalar, by `mode` in AGGREGATIONS."""
    if mode not in _AGGREGATE:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {mode!r}")
    return _AGGREGATE[mode](per_token, mask)


# ---------------------------------------------------------------- inputs and outputs

@dataclass
class PolicyBatch:
    """One minibatch of sampled responses, as the loss sees it.

    logp       (B, T) log pi_theta of the sampled tokens; carries the gradient
    logp_old   (B, T) log pi_old, the policy that sampled them (no gradient)
    advantages (B,)   one advantage per sequence (group_advantages)
    mask       (B, T) bool (or 0/1): True on response tokens
    logp_ref   (B, T) log pi_ref of the reference policy, or None (then kl_ref logs nan)
    logits     (B, T, V) of pi_theta, or None if `entropy` is given
    entropy    (B, T) token entropy in nats; takes precedence over logits. For the entropy bonus
               it must carry the gradient; for the other variants a detached one spares keeping
               the (B, T, V) graph of a large vocabulary
    rollout    name -> (B, T): the variant's own `rollout_features` of these tokens, computed from
               the sampling policy's logits at rollout time (empty when it asks for none)
    """

    logp: torch.Tensor
    logp_old: torch.Tensor
    advantages: torch.Tensor
    mask: torch.Tensor
    logp_ref: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    entropy: torch.Tensor | None = None
    rollout: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self):
        shape = tuple(self.logp.shape)
        if len(shape) != 2:
            raise ValueError(f"PolicyBatch.logp must be (B, T), got shape {shape}")
        for name in ("logp_old", "mask", "logp_ref", "entropy"):
            value = getattr(self, name)
            if value is not None and tuple(value.shape) != shape:
                raise ValueError(f"PolicyBatch.{name} must have logp's shape {shape}, got {tuple(value.shape)}")
        if tuple(self.advantages.shape) != shape[:1]:
            raise ValueError(f"PolicyBatch.advantages must be ({shape[0]},), one per sequence, got {tuple(self.advantages.shape)}")
        if self.logits is not None and tuple(self.logits.shape[:2]) != shape:
            raise ValueError(f"PolicyBatch.logits must be {shape} + (V,), got {tuple(self.logits.shape)}")
        if self.logits is None and self.entropy is None:
            raise ValueError("PolicyBatch needs logits or entropy: every variant logs the policy entropy")
        for name, value in self.rollout.items():
            if tuple(value.shape) != shape:
                raise ValueError(f"PolicyBatch.rollout[{name!r}] must have logp's shape {shape}, got {tuple(value.shape)}")
        self.mask = self.mask.bool()
        self.logp_old = self.logp_old.detach()
        if self.logp_ref is not None:
            self.logp_ref = self.logp_ref.detach()

    def token_entropy(self) -> torch.Tensor:
        return self.entropy if self.entropy is not None else token_entropy(self.logits)


@dataclass
class LossOutput:
    loss: torch.Tensor  # scalar, to call backward() on
    logs: dict[str, float]  # LOG_KEYS (and any extra), plain floats
    selected: torch.Tensor = field(repr=False)  # (B, T) bool: detached (Clip-Cov) / penalized (KL-Cov)


@dataclass
class TokenLoss:
    """A variant's policy-gradient term before aggregation."""

    loss: torch.Tensor  # (B, T)
    clipped: torch.Tensor  # (B, T) bool: PPO clip active
    selected: torch.Tensor  # (B, T) bool: chosen by the variant's own rule


# ---------------------------------------------------------------- parameters and the base variant

@dataclass(frozen=True)
class LossParams:
    aggregation: str = "token_mean"  # "token_mean" (DAPO, verl default) or "seq_mean" (GRPO Eq. 3)

    def __post_init__(self):
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {self.aggregation!r}")


@dataclass(frozen=True)
class ClipParams(LossParams):
    eps_low: float = 0.2  # ratio clipped below at 1 - eps_low (dimensionless)
    eps_high: float = 0.2  # ratio clipped above at 1 + eps_high (dimensionless)
    dual_clip_c: float = 0.0  # dual-clip bound: for A < 0 the loss is at most -c A (dimensionless); 0: off, else > 1

    def __post_init__(self):
        super().__post_init__()
        check_range(self, "eps_low", 0.0, 1.0)
        check_range(self, "eps_high", 0.0, math.inf)
        if self.dual_clip_c != 0 and not 1.0 < self.dual_clip_c < math.inf:
            raise ValueError(f"{type(self).__qualname__}.dual_clip_c must be 0 (off) or a finite number > 1, got {self.dual_clip_c}")


def check_range(params, name: str, low: float, high: float) -> None:
    value = getattr(params, name)
    if not low <= value <= high:
        raise ValueError(f"{type(params).__qualname__}.{name} must be in [{low}, {high}], got {value}")


class PolicyLoss:
    """GRPO's loss; each variant overrides one of two hooks:

    token_loss(batch, cov) -> TokenLoss   the per-token policy-gradient term (default: PPO clip)
    regularizer(batch, entropy) -> scalar added to the aggregated term (default: none)

    loss = aggregate(token_loss, mask) + regularizer.
    """

    Params: type = ClipParams
    registry_name: str

    def __init__(self, params, generator: torch.Generator | None = None):
        self.params = params
        self.generator = generator

    @classmethod
    def schedule_warning(cls, ppo_epochs: int, minibatches: int) -> str | None:
        """A warning about the update schedule (PPO epochs x minibatches per rollout batch), or None."""
        return None

    def requires(self) -> frozenset[str]:
        """What this variant needs beyond the plain batch (names in REQUIREMENTS); none by default."""
        return frozenset()

    def rollout_features(self, logits: torch.Tensor, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-token values (B, T) this variant reads later from PolicyBatch.rollout, computed from
        the sampling policy's logits (B, T, V) of the sampled tokens (B, T); called at rollout time
        when "rollout_logits" is in `requires()`."""
        return {}

    def token_loss(self, batch: PolicyBatch, cov: torch.Tensor) -> TokenLoss:
        p = self.params
        loss, clipped = clipped_surrogate(batch.logp, batch.logp_old, batch.advantages, p.eps_low, p.eps_high, p.dual_clip_c)
        return TokenLoss(loss, clipped, torch.zeros_like(batch.mask))

    def regularizer(self, batch: PolicyBatch, entropy: torch.Tensor) -> torch.Tensor:
        return batch.logp.new_zeros(())

    def loss(self, batch: PolicyBatch) -> LossOutput:
        mask = batch.mask
        cov = token_covariance(batch.logp, batch.advantages, mask)
        entropy = batch.token_entropy()
        term = self.token_loss(batch, cov)
        pg_loss = aggregate(term.loss, mask, self.params.aggregation)
        loss = pg_loss + self.regularizer(batch, entropy)
        with torch.no_grad():
            kl_ref = masked_mean(k3_kl(batch.logp, batch.logp_ref), mask).item() if batch.logp_ref is not None else math.nan
            logs = {
                "loss": loss.item(),
                "pg_loss": pg_loss.item(),
                "entropy": masked_mean(entropy.detach(), mask).item(),  # nats per response token
                "clip_frac": masked_mean(term.clipped.float(), mask).item(),
                "ppo_kl": masked_mean(batch.logp_old - batch.logp.detach(), mask).item(),  # k1 KL(old || new)
                "kl_ref": kl_ref,  # k3 KL(new || ref), nats per token
                "cov_mean": masked_mean(cov, mask).item(),
                "selected_frac": masked_mean((term.selected & mask).float(), mask).item(),
            }
        return LossOutput(loss, logs, term.selected & mask)
