"""What every test-time adaptation method shares: the contract the TTA protocol calls, and the
few pieces the entropy-minimization papers (Tent, EATA, SAR, DeYO) all build on.

The contract, called by entrobench/protocols/tta/run.py:
    method = Cls(model, Cls.Params(**card_params), n_classes)   # configures the model, snapshots it
    method.prepare(clean_x)          # once, before the stream: in-distribution images (N, ch, H, W)
    logits = method.adapt(x)         # x (B, ch, H, W) -> logits (B, n_classes); the model is updated
    method.last_stats                # {"entropy_mean", "used_frac", "backward_passes", ...} of that call
    method.reset()                   # back to the state at construction ("reset per domain")
    state = method.state_dict()      # data only (tensors, numbers, lists and dicts): a checkpoint
    method.load_state_dict(state)    # on a method built as this one was: it goes on bit for bit

A method owns the model it is given: it changes its modes, which parameters require grad and,
through adapt(), its weights. It runs on the device of the model's parameters.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

NORM_LAYERS = (_BatchNorm, nn.GroupNorm, nn.LayerNorm)  # layers whose affine weight/bias TTA adapts
OPTIMIZERS = ("sgd", "adam")
# SAR's and DeYO's reference code (collect_params) leaves the top of the network as the source
# model has it, by module name: a module whose name contains one of these, or is "norm" (a
# ViT's final norm). On torchvision's / timm's ResNet-50 that is layer4 (10 of its 53 norm layers,
# 20 of 106 affine tensors); on ViT-Base, blocks 9-11 and the final norm. Names are matched as
# the reference does, by substring, so a model without such names (the small CNN, WRN-28-10)
# has every norm layer adapted.
TOP_LAYER_NAMES = ("layer4", "blocks.9", "blocks.10", "blocks.11", "norm.")
# What the constructor sets up from its arguments (the model's modes, hooks and trainable parameters,
# the optimizer's parameter groups): a resumed method is built again, so these are not checkpointed.
_BUILT = ("model", "optimizer", "params", "device", "_saved")
_SCALARS = (type(None), bool, int, float, str)


def softmax_entropy(logits: torch.Tensor) -> torch.Tensor:
    """H(p) = -sum_c p_c log p_c of softmax(logits), in nats: (B, C) -> (B,)."""
    # log_softmax instead of log(softmax): exact for saturated logits, where softmax underflows to 0.
    return -(logits.softmax(1) * logits.log_softmax(1)).sum(1)


def norm_affine_params(model: nn.Module, skip_top_layers: bool = False) -> list[nn.Parameter]:
    """The affine scale and shift (weight, bias) of every BatchNorm, GroupNorm and LayerNorm;
    with skip_top_layers, not of those in the top layers SAR and DeYO leave alone (TOP_LAYER_NAMES)."""
    params = []
    for name, module in model.named_modules():
        if skip_top_layers and is_top_layer(name):
            continue
        if isinstance(module, NORM_LAYERS):
            params += [p for p in (module.weight, module.bias) if p is not None]
    return params


def is_top_layer(module_name: str) -> bool:
    """True for a module SAR's and DeYO's collect_params skip (see TOP_LAYER_NAMES)."""
    return module_name == "norm" or any(part in module_name for part in TOP_LAYER_NAMES)


def has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, _BatchNorm) for m in model.modules())


def use_test_batch_statistics(model: nn.Module) -> None:
    """Make every BatchNorm normalize with the statistics of the batch it is given.

    Train mode selects batch statistics; track_running_stats=False stops the running averages from
    being updated, so they stay the source model's (BNAdapt's prior and reset() rely on that).
    The rest of the model stays in eval mode: the reference code puts the whole model in train
    mode, which would also switch on dropout; the models here have none, so nothing else changes.
    """
    model.eval()
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.train()
            module.track_running_stats = False


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@dataclass(frozen=True)
class OptimizerParams:
    """Optimizer fields shared by the gradient-based methods; each method's Params subclasses this
    and overrides the defaults with its paper's."""

    optimizer: str = "sgd"  # "sgd" or "adam"; updates the norm affine parameters only
    lr: float = 0.00025  # learning rate per adapt() call (the papers' ImageNet value at batch 64)
    momentum: float = 0.9  # SGD momentum; Adam uses betas (momentum, 0.999) as Tent's code does

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.lr < 0:
            raise ValueError(f"lr must be >= 0, got {self.lr}")


def make_optimizer(params: list[nn.Parameter], p: OptimizerParams) -> torch.optim.Optimizer:
    if p.optimizer == "sgd":
        return torch.optim.SGD(params, lr=p.lr, momentum=p.momentum)
    return torch.optim.Adam(params, lr=p.lr, betas=(p.momentum, 0.999))


class TTAMethod:
    """Base of every TTA method. Subclasses define a nested frozen dataclass `Params`, configure
    the model in __init__ and end it with `self.save_state()`."""

    Params: type

    def __init__(self, model: nn.Module, params, n_classes: int):
        self.model = model
        self.params = params
        self.n_classes = n_classes
        self.device = model_device(model)
        self.optimizer: torch.optim.Optimizer | None = None
        self.last_stats: dict = {}
        self._saved: tuple[dict, dict | None] | None = None

    def adapt_norm_affine(self, params: OptimizerParams, skip_top_layers: bool = False) -> list[nn.Parameter]:
        """The configuration Tent introduced and EATA, SAR and DeYO reuse: BatchNorm normalizes
        with test-batch statistics, only the norm layers' affine weight/bias require grad, and
        the optimizer sees only those. skip_top_layers: SAR's and DeYO's choice of those layers
        (every BatchNorm still normalizes with the test batch, top layers included, as there)."""
        use_test_batch_statistics(self.model)
        self.model.requires_grad_(False)
        trainable = norm_affine_params(self.model, skip_top_layers)
        if not trainable:
            raise ValueError(f"{type(self).__name__}: the model has no BatchNorm/GroupNorm/LayerNorm affine parameters to adapt")
        for p in trainable:
            p.requires_grad_(True)
        self.optimizer = make_optimizer(trainable, params)
        return trainable

    def save_state(self) -> None:
        """Snapshot model and optimizer; reset() returns to exactly this (bitwise)."""
        optim_state = copy.deepcopy(self.optimizer.state_dict()) if self.optimizer else None
        self._saved = (copy.deepcopy(self.model.state_dict()), optim_state)

    def restore_state(self) -> None:
        model_state, optim_state = self._saved
        self.model.load_state_dict(model_state)
        if self.optimizer is not None:
            self.optimizer.load_state_dict(optim_state)

    def prepare(self, clean_x: torch.Tensor) -> None:
        """Optional hook, called once before the stream with in-distribution images."""

    def adapt(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def reset(self) -> None:
        """Back to the state at construction. Subclasses with running state extend this."""
        self.restore_state()

    def state_dict(self) -> dict:
        """Everything adapt() and reset() read that changes along the stream: the model's weights
        and buffers, the optimizer's state, the snapshot reset() returns to, and the method's own
        running state, which is every other attribute holding data (tensors, numbers, strings, None,
        lists and dicts of them: EATA's probability average, Fisher and anchor, SAR's loss average).
        Attributes that only point into the model (EATA's `trainable`) come back with the model.
        A method with state of another kind overrides this pair."""
        model_storage = {t.untyped_storage().data_ptr() for t in (*self.model.parameters(), *self.model.buffers())}
        running = {}
        for name, value in vars(self).items():
            if name in _BUILT or _points_into(value, model_storage):
                continue
            if not _is_data(value):
                raise TypeError(f"{type(self).__name__}.{name} holds a {type(value).__name__}, which a checkpoint cannot hold "
                                "(tensors, numbers, strings, None, lists and dicts of them): override state_dict/load_state_dict")
            running[name] = value
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict() if self.optimizer else None,
                "reset_to": self._saved, "running": running}

    def load_state_dict(self, state: dict) -> None:
        """Continue from `state` (a state_dict() of a method built with the same model and Params)."""
        self.model.load_state_dict(state["model"])
        if self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        self._saved = state["reset_to"]
        for name, value in state["running"].items():
            setattr(self, name, value)

    def record(self, logits: torch.Tensor, used: int, backward_passes: int, **extra: float) -> None:
        """Fill last_stats for the batch whose predictions are `logits` (B, C)."""
        self.last_stats = {
            "entropy_mean": float(softmax_entropy(logits.detach()).mean()),
            "used_frac": used / len(logits),
            "backward_passes": backward_passes,
            **{k: float(v) for k, v in extra.items()},
        }


def _is_data(value) -> bool:
    if isinstance(value, _SCALARS) or (isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_data(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_data(v) for k, v in value.items())
    return False


def _points_into(value, model_storage: set[int]) -> bool:
    """True if `value` is, or is a list of, tensors sharing memory with the model's parameters or buffers."""
    if isinstance(value, torch.Tensor):
        return value.untyped_storage().data_ptr() in model_storage
    return isinstance(value, (list, tuple)) and bool(value) and all(_points_into(v, model_storage) for v in value)
