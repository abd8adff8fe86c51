"""A compression cell: load the pair's data, build the method, train or prune, measure.

Called by the engine with a `CellRun` (entrobench/family.py): `run.config` holds the method's
registry name and params, the dataset, the setting, the protocol and the seed; `run.inputs`
has the teacher build's folder.
"""
from __future__ import annotations

import torch

from entrobench.protocols.compression import data, distill, prune
from entrobench.protocols.compression.family import Protocol, recipe
from entrobench.protocols.compression.train import Recipe
from methods.compression.base import Distiller, Pruner


def run_cell(run, dataset) -> dict:
    cfg = run.config
    torch.set_num_threads(max(1, run.threads))
    protocol = Protocol(**cfg["protocol"])
    method = run.method_cls(run.method_cls.Params(**cfg["params"]))
    split = data.load(dataset.source, run.data_root, protocol.n_train, protocol.n_test, protocol.image_size)
    teacher_dir = run.inputs["teacher"]
    if isinstance(method, Distiller):
        out = distill.run(method, split, teacher_dir, {"teacher": dataset.teacher, "student": dataset.student},
                          Recipe(**recipe(protocol, dataset, protocol.epochs)), cfg["seed"], run.progress, run.checkpoint_path)
    elif isinstance(method, Pruner):
        rounds_recipe = Recipe(**recipe(protocol, dataset, protocol.retrain_epochs))
        out = prune.run(method, split, teacher_dir, dataset.teacher, rounds_recipe, protocol, cfg["seed"], run.progress)
    else:
        raise TypeError(f"{cfg['method']}: a compression method must subclass Distiller or Pruner (methods/compression/base.py)")
    out["data"] = {"fingerprint": split.fingerprint, "n_train": len(split.y_train), "n_test": len(split.y_test)}
    run.progress.done()
    return out
