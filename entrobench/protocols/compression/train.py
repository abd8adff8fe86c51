"""The training loop every compression job shares (teacher, students, pruning rounds), and the
teacher build: trained once per dataset and protocol, cached, read by every cell.

Optimizer: SGD with momentum and weight decay, the learning rate multiplied by `decay_rate` at
the given fractions of the epochs (mdistiller's CIFAR-100 recipe: lr 0.05, x0.1 at 150/180/210
of 240 epochs, i.e. at 0.625/0.75/0.875), stepped once per epoch.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from entrobench.protocols.compression import data as datasets
from entrobench.protocols.compression.evaluate import classification_metrics, predict
from entrobench.protocols.compression.models import build
from entrobench.record import Skip

TEACHER, INIT, REWIND = "teacher.safetensors", "teacher_init.safetensors", "teacher_rewind.safetensors"


@dataclass(frozen=True)
class Recipe:
    epochs: int
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    decay_at: list[float] = field(default_factory=lambda: [0.625, 0.75, 0.875])  # fractions of `epochs`
    decay_rate: float = 0.1
    augment: bool = False  # CIFAR crop + flip (data.augment_cifar)


def make_optimizer(parameters, recipe: Recipe, lr_scale: float = 1.0):
    opt = torch.optim.SGD(parameters, lr=recipe.lr * lr_scale, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    milestones = sorted({max(1, round(f * recipe.epochs)) for f in recipe.decay_at})
    return opt, torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=recipe.decay_rate)


def fit(
    modules: list[torch.nn.Module],
    step_loss: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    recipe: Recipe,
    generator: torch.Generator,
    after_step: Callable[[], None] | None = None,
    after_epoch: Callable[[int, float], None] | None = None,
    lr_scale: float = 1.0,
    checkpoint_path: Path | None = None,
    log: dict | None = None,
) -> None:
    """`recipe.epochs` epochs of minibatch SGD on the modules' parameters over (x, y), in an order
    drawn from `generator`. step_loss(images, labels, indices, epoch) -> scalar; epochs count
    from 1. `after_step` runs after every optimizer step (pruning masks), `after_epoch(epoch,
    mean_loss)` after each epoch. With `checkpoint_path` the loop saves after every epoch (and on
    SIGTERM) the modules, optimizer, scheduler, data-order generator and `log` (a dict the caller
    fills, e.g. curves), and a rerun resumes after the last saved epoch (entrobench/checkpoint.py)."""
    from entrobench.checkpoint import Checkpoint, fingerprint

    opt, sched = make_optimizer([p for m in modules for p in m.parameters()], recipe, lr_scale)
    ckpt = Checkpoint(checkpoint_path, every=1, fingerprint=fingerprint({"recipe": recipe.__dict__, "lr_scale": lr_scale}, __file__))
    with ckpt:
        saved = ckpt.load()
        if saved is not None:
            for module, state in zip(modules, saved["modules"]):
                module.load_state_dict(state)
            opt.load_state_dict(saved["optimizer"])
            sched.load_state_dict(saved["scheduler"])
            generator.set_state(saved["generator"])
            if log is not None:
                log.clear()
                log.update(saved["log"])
        for epoch in range(ckpt.start + 1, recipe.epochs + 1):
            _epoch(epoch, step_loss, x, y, recipe, generator, opt, after_step, after_epoch)
            sched.step()
            ckpt.step(epoch - 1, lambda: {"modules": [m.state_dict() for m in modules], "optimizer": opt.state_dict(),
                                          "scheduler": sched.state_dict(), "generator": generator.get_state(), "log": log})
    ckpt.discard()


def _epoch(epoch, step_loss, x, y, recipe: Recipe, generator, opt, after_step, after_epoch) -> None:
    """One pass over the data in a fresh order; the optimizer steps per minibatch."""
    order = torch.randperm(len(x), generator=generator)
    total = 0.0
    for start in range(0, len(x), recipe.batch_size):
        idx = order[start : start + recipe.batch_size]
        xb = datasets.augment_cifar(x[idx], generator) if recipe.augment else x[idx]
        loss = step_loss(xb, y[idx], idx, epoch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if after_step is not None:
            after_step()
        total += float(loss.detach()) * len(idx)
    if after_epoch is not None:
        after_epoch(epoch, total / len(x))


def cross_entropy_step(model: torch.nn.Module):
    return lambda xb, yb, idx, epoch: torch.nn.functional.cross_entropy(model(xb), yb)


# ------------------------------------------------------------------ the teacher build

def make_teacher(run) -> dict:
    """Build `make`: the dense teacher of a dataset, trained here (with its initialization and its
    weights after `rewind_epoch` epochs kept for the pruning methods that rewind) or loaded from
    published weights under the data root. Writes safetensors; returns the build summary."""
    cfg = run.config
    torch.set_num_threads(max(1, run.threads))
    split = datasets.load(cfg["source"], run.data_root, cfg["n_train"], cfg["n_test"], cfg["image_size"])
    torch.manual_seed(cfg["seed"])
    model = build(cfg["teacher"], split.n_classes, split.in_channels)
    summary = {"arch": cfg["teacher"], "params": sum(p.numel() for p in model.parameters()), "fingerprint": split.fingerprint}
    if cfg["teacher_weights"]:
        model.load_state_dict(load_published(run.data_root, cfg["teacher_weights"], cfg["teacher_sha256"]))
        summary["weights"] = cfg["teacher_weights"]
    else:
        recipe = Recipe(**cfg["recipe"])
        # everything the build writes besides the final weights lives in `log`, so a resumed
        # run still has the initialization and the rewind-epoch weights of the first attempt
        log = {"train_loss": [], "init": _state(model), "rewind": None}

        def after_epoch(epoch: int, loss: float) -> None:
            log["train_loss"].append(loss)
            if epoch == cfg["rewind_epoch"]:
                log["rewind"] = _state(model)
            run.progress.update(epoch, recipe.epochs, f"teacher loss {loss:.3f}")

        model.train()
        fit([model], cross_entropy_step(model), split.x_train, split.y_train, recipe, torch.Generator().manual_seed(cfg["seed"]),
            after_epoch=after_epoch, checkpoint_path=run.checkpoint_path, log=log)
        save_file(log["init"], run.out / INIT)
        if log["rewind"] is not None:  # None when the rewind epoch is past the last epoch
            save_file(log["rewind"], run.out / REWIND)
        summary["train_loss"] = log["train_loss"]
    save_file(_state(model), run.out / TEACHER)
    summary["test"] = classification_metrics(predict(model, split.x_test), split.y_test)
    (run.out / "teacher.json").write_text(json.dumps(summary, indent=1))
    run.progress.done(f"teacher top-1 {summary['test']['top1_pct']:.2f}%")
    return summary


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def load_teacher(folder: Path, arch: str, n_classes: int, in_channels: int, which: str = TEACHER) -> torch.nn.Module:
    path = Path(folder) / which
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not in the teacher build (published teachers have no initialization or rewind snapshot)")
    model = build(arch, n_classes, in_channels)
    model.load_state_dict(load_file(path))
    return model.eval()


def load_published(data_root: Path | None, relative: str, sha256: str) -> dict[str, torch.Tensor]:
    """A published teacher's state dict from under the data root, checked against its sha256.
    CRD / mdistiller checkpoints hold {"model": state_dict, ...}; torchvision's are the state dict."""
    path = Path(data_root or "") / relative
    if data_root is None or not path.is_file():
        raise Skip(f"teacher weights not found at {path} (stage them on the login node; see the card's notes)")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if sha256 and digest != sha256:
        raise ValueError(f"{path}: sha256 {digest} differs from the card's {sha256}: a different or damaged file")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("model", state) if isinstance(state, dict) else state
