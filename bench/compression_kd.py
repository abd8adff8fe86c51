"""Training steps per second of one KD epoch: our Hinton KD loss beside torchdistill's KDLoss.

    python bench/compression_kd.py            # -> bench/results/compression_kd.json

The same student, teacher, images, batch order and optimizer for both; only the loss module
differs. The teacher's logits are computed per batch (as with augmentation), so a step is a
teacher forward, a student forward and backward, the loss and an SGD step. The two run
interleaved, `--repeats` times each, on one thread; the figure is the median. Before timing,
both losses are evaluated on the same logits: they must agree (same formula: alpha = 0.1 on
CE, 0.9 on T^2 KL at T = 4).

Needs torchdistill, installed without its dependencies:
    .venv/bin/python -m pip install --no-deps torchdistill==1.1.5
Its losses need torch only; the torchvision it declares resolves to a wheel (0.28.0) that fails
to load against the CPU torch 2.13.0 ("operator torchvision::nms does not exist") and would then
break every `import torchvision` in the environment, so it is not in the `bench` extra.
Data: MNIST pooled to 14x14 from the data root (the compression smoke setting), else
scikit-learn digits.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from run import write  # noqa: E402 (bench/run.py: machine info + JSON writer, importable once bench/ is on the path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-train", type=int, default=6000)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    import torch
    from torchdistill.losses.mid_level import KDLoss

    from entrobench.data.sources import default_data_root
    from entrobench.protocols.compression import data
    from entrobench.protocols.compression.models import build
    from entrobench.record import Skip
    from methods.compression.base import Batch
    from methods.compression.kd import HintonKD

    torch.set_num_threads(1)
    try:
        split, source = data.load("mnist", default_data_root(), args.n_train, 10, 14), "mnist-14x14"
    except Skip:  # no MNIST under the data root: digits ship with scikit-learn
        split, source = data.load("digits", None), "digits-8x8"
    ours = HintonKD(HintonKD.Params(temperature=4.0, ce_weight=0.1, kd_weight=0.9))
    theirs = KDLoss(student_module_path=".", student_module_io="output", teacher_module_path=".", teacher_module_io="output",
                    temperature=4.0, alpha=0.1, beta=0.9, reduction="batchmean")
    losses = {
        "entrobench": lambda s, t, y: ours.loss(Batch(s, y, t)),
        "torchdistill": lambda s, t, y: theirs({".": {"output": s}}, {".": {"output": t}}, y),
    }

    g = torch.Generator().manual_seed(0)
    s, t, y = torch.randn(32, 10, generator=g), torch.randn(32, 10, generator=g), torch.randint(0, 10, (32,), generator=g)
    values = {name: float(fn(s, t, y)) for name, fn in losses.items()}
    agree = abs(values["entrobench"] - values["torchdistill"]) < 1e-5

    torch.manual_seed(0)
    teacher = build("cnn_teacher", split.n_classes, split.in_channels).eval()
    start_state = build("cnn_student", split.n_classes, split.in_channels).state_dict()
    steps = -(-len(split.x_train) // args.batch_size)

    def epoch(name: str) -> float:
        student = build("cnn_student", split.n_classes, split.in_channels)
        student.load_state_dict(start_state)
        opt = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        order = torch.randperm(len(split.x_train), generator=torch.Generator().manual_seed(1))
        begin = time.perf_counter()
        for i in range(steps):
            idx = order[i * args.batch_size : (i + 1) * args.batch_size]
            xb, yb = split.x_train[idx], split.y_train[idx]
            with torch.no_grad():
                tb = teacher(xb)
            loss = losses[name](student(xb), tb, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return steps / (time.perf_counter() - begin)

    rates = {name: [] for name in losses}
    for _ in range(args.repeats):
        for name in losses:  # interleaved, so a load change hits both
            rates[name].append(epoch(name))
    median = {name: statistics.median(r) for name, r in rates.items()}
    figures = {
        "what": "training steps/s of one KD epoch (teacher forward, student forward+backward, loss, SGD step), Hinton KD T 4, CE 0.1, KL 0.9",
        "data": source, "n_train": len(split.x_train), "batch_size": args.batch_size, "steps_per_epoch": steps,
        "student": "cnn_student", "teacher": "cnn_teacher", "threads": 1,
        "loss_values_on_fixed_logits": values, "losses_agree": agree,
        "steps_per_s": {name: {"median": median[name], "runs": rates[name]} for name in losses},
        "ours_over_torchdistill": median["entrobench"] / median["torchdistill"],
    }
    write("compression_kd", figures)
    print({k: round(v, 1) for k, v in median.items()}, "agree" if agree else "DISAGREE", values)


if __name__ == "__main__":
    main()
