"""One pruning cell: prune the cached dense teacher to each target sparsity with the method, then
measure it.

Rounds: the method names the sparsity after the round (`next_sparsity`, never past the next
target); the protocol removes the smallest-magnitude surviving weights globally to exactly that
sparsity, restarts the survivors from where the method says (`rewind`: trained values, the
initialization, or the dense run's rewind epoch), and trains them with the masks re-applied after
every optimizer step. A method that is not `ITERATIVE` prunes every target from the dense model
in one round. Training after a round: `finetune_epochs` at `finetune_lr_scale` x the recipe's
learning rate when the survivors keep their trained values (Han et al. fine-tune with a smaller
rate), `retrain_epochs` on the recipe's schedule after a rewind (Frankle et al. retrain the
rewound network in full).

Per target s (suffix `_s50` for 50%): test top-1 and its drop from the dense model, the PQ
Index (p 0.5, q 1) of the surviving weights, the count of nonzero parameters (all tensors), the
measured inference time (dense kernels: unstructured zeros are still multiplied), the rounds
taken, and the sparsity reached (equal to s: the masks are exact).
"""
from __future__ import annotations

import copy

import torch

from entrobench.protocols.compression.evaluate import predict, time_inference
from entrobench.protocols.compression.train import (
    INIT,
    REWIND,
    TEACHER,
    Recipe,
    cross_entropy_step,
    fit,
    load_teacher,
)
from methods.compression.base import (
    Pruner,
    apply_masks,
    global_magnitude_masks,
    pq_index,
    prunable,
    sparsity_of,
)


def suffix(sparsity: float) -> str:
    return f"s{round(100 * sparsity)}"


def top1(model, split) -> float:
    return 100.0 * float((predict(model, split.x_test).argmax(1) == split.y_test).double().mean())


def run(method: Pruner, split, teacher_dir, arch: str, recipe: Recipe, protocol, seed: int, progress) -> dict:
    def load(which: str):
        return load_teacher(teacher_dir, arch, split.n_classes, split.in_channels, which)

    dense = load(TEACHER)
    restart = {"init": INIT, "early": REWIND}.get(method.params.rewind)
    restart_state = load(restart).state_dict() if restart else None
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    dense_top1 = top1(dense, split)
    metrics = {"dense_top1_pct": dense_top1, "dense_params": float(_nonzero(dense)),
               "dense_infer_ms": time_inference(dense, split.x_test, protocol.eval_batch_size)}
    curves = {"round_sparsity": [], "round_top1_pct": []}
    targets = sorted(protocol.sparsities)
    model, masks, current, rounds = copy.deepcopy(dense), None, 0.0, 0
    half_weight = 0.5 / sum(w.numel() for w in prunable(dense))  # met: round(target * N) zeros
    stalled = ""
    for target in targets:
        if not method.ITERATIVE:
            model, masks, current, rounds = copy.deepcopy(dense), None, 0.0, 0
        while current < target - half_weight:
            nxt = method.next_sparsity(current, target, _survivors(model, masks))
            if nxt <= current or rounds >= protocol.max_rounds:
                stalled = f"stopped at sparsity {current:.4f} after {rounds} rounds ({'the method asked for no more pruning' if nxt <= current else 'max_rounds'})"
                break
            masks = global_magnitude_masks(prunable(model), nxt, masks)
            if restart_state is not None:
                model.load_state_dict(restart_state)
            apply_masks(prunable(model), masks)
            _train(model, masks, split, recipe, protocol, rewound=restart_state is not None, generator=generator)
            current, rounds = sparsity_of(masks), rounds + 1
            curves["round_sparsity"].append(current)
            curves["round_top1_pct"].append(top1(model, split))
            progress.update(rounds, protocol.max_rounds, f"sparsity {current:.3f} top-1 {curves['round_top1_pct'][-1]:.2f}")
        if stalled:
            break
        tag = suffix(target)
        acc = top1(model, split)
        metrics.update({
            f"top1_pct_{tag}": acc,
            f"drop_pct_{tag}": dense_top1 - acc,
            f"pq_index_{tag}": pq_index(_survivors(model, masks)),
            f"params_{tag}": float(_nonzero(model)),
            f"infer_ms_{tag}": time_inference(model, split.x_test, protocol.eval_batch_size),
            f"rounds_{tag}": float(rounds),
            f"sparsity_{tag}": sparsity_of(masks),
        })
    reached = [t for t in targets if f"top1_pct_{suffix(t)}" in metrics]
    return {"metrics": metrics, "curves": curves, "not_reached": [t for t in targets if t not in reached], "stopped": stalled}


def _train(model, masks, split, recipe: Recipe, protocol, rewound: bool, generator) -> None:
    weights = prunable(model)
    epochs = recipe.epochs if rewound else protocol.finetune_epochs  # recipe.epochs: the retraining length
    if epochs == 0:
        return
    schedule = Recipe(**{**recipe.__dict__, "epochs": epochs})
    model.train()
    fit([model], cross_entropy_step(model), split.x_train, split.y_train, schedule, generator,
        after_step=lambda: apply_masks(weights, masks), lr_scale=1.0 if rewound else protocol.finetune_lr_scale)
    model.eval()


def _nonzero(model) -> int:
    return int(sum(int(torch.count_nonzero(p)) for p in model.parameters()))



def _survivors(model, masks) -> torch.Tensor:
    """The prunable weights still there, flat (all of them before the first round)."""
    weights = prunable(model)
    return torch.cat([w.detach()[m].flatten() for w, m in zip(weights, masks)] if masks else [w.detach().flatten() for w in weights])
