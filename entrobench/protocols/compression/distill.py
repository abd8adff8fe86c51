"""One distillation cell: train a student with the method's loss, then measure it.

Offline methods learn from the cached teacher (eval mode, frozen). When the training images are
not augmented, the teacher's logits are computed once before training (the same numbers a
per-batch teacher pass would give, for a fraction of the cost); with augmentation the teacher
sees each augmented batch. Online methods (DML, BD-KD) train a fresh network of the teacher's
architecture alongside the student, from the cell's seed, and are measured against it.

The record: the student's final-epoch test metrics (`top1_pct`, `ece_pct`, `nll`, `entropy`,
`teacher_kl`), `best_top1_pct` (the maximum over epochs of test top-1, what the standard CIFAR-100
repositories report; labelled apart because it selects on the test set), the teacher's own
test metrics, per-epoch curves, and the reliability bins of the final student.
"""
from __future__ import annotations

import torch

from entrobench.protocols.compression.evaluate import (
    classification_metrics,
    predict,
    reliability,
)
from entrobench.protocols.compression.models import build
from entrobench.protocols.compression.train import Recipe, fit, load_teacher
from methods.compression.base import Batch, Distiller


def run(method: Distiller, split, teacher_dir, arch: dict[str, str], recipe: Recipe, seed: int, progress, checkpoint_path=None) -> dict:
    torch.manual_seed(seed)
    student = build(arch["student"], split.n_classes, split.in_channels, aux_head=method.AUX_HEAD)
    if method.ONLINE:
        teacher = build(arch["teacher"], split.n_classes, split.in_channels)
        trained = [student, teacher]
        teacher.train()
        teacher_logits = teacher  # called per batch, with its graph
    else:
        teacher = load_teacher(teacher_dir, arch["teacher"], split.n_classes, split.in_channels)
        trained = [student]
        for p in teacher.parameters():
            p.requires_grad_(False)
        cached = None if recipe.augment else predict(teacher, split.x_train)
        teacher_logits = (lambda xb, idx: cached[idx]) if cached is not None else (lambda xb, idx: predict(teacher, xb))

    def step_loss(xb, yb, idx, epoch):
        out = student(xb)
        logits, aux = out if isinstance(out, tuple) else (out, None)
        t = teacher_logits(xb) if method.ONLINE else teacher_logits(xb, idx)
        return method.loss(Batch(logits=logits, target=yb, teacher=t, epoch=epoch, aux=aux))

    curves = {"train_loss": [], "test_top1_pct": []}

    def after_epoch(epoch: int, loss: float) -> None:
        curves["train_loss"].append(loss)
        curves["test_top1_pct"].append(100.0 * float((predict(student, split.x_test).argmax(1) == split.y_test).double().mean()))
        progress.update(epoch, recipe.epochs, f"loss {loss:.3f} top-1 {curves['test_top1_pct'][-1]:.2f}")

    student.train()
    fit(trained, step_loss, split.x_train, split.y_train, recipe, torch.Generator().manual_seed(seed), after_epoch=after_epoch,
        checkpoint_path=checkpoint_path, log=curves)

    logits, t_logits = predict(student, split.x_test), predict(teacher, split.x_test)
    metrics = classification_metrics(logits, split.y_test, t_logits)
    metrics["best_top1_pct"] = max(curves["test_top1_pct"])
    teacher_metrics = classification_metrics(t_logits, split.y_test)
    metrics["teacher_top1_pct"] = teacher_metrics["top1_pct"]
    metrics["student_params"] = float(sum(p.numel() for p in student.parameters()))
    return {
        "metrics": metrics,
        "curves": curves,
        "teacher": {**teacher_metrics, "online": method.ONLINE},
        "reliability": reliability(logits, split.y_test),
    }
