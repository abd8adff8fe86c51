"""Compression: knowledge distillation (a student learns from a teacher's logits) and pruning (a
trained network loses weights), with the student's calibration and predictive entropy measured.

What a card may say (schema), the built-in datasets (each a teacher-student pair with its data
and training recipe) and the metrics. Light on imports: the DAG reads this to plan; the work is
in run.py (cells), train.py (the cached teacher) and plots.py.

A cell's method decides its kind: a `Distiller` (methods/compression/*.py losses) trains the
pair's student; a `Pruner` prunes the pair's dense teacher to each of `protocol.sparsities`.
Both read one cached input, the teacher: trained here once per dataset and protocol (or loaded
from published weights under the data root), shared by every method, seed and card.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from entrobench.family import Build, Family
from entrobench.metrics import Metric

HERE = Path(__file__).resolve().parent
CIFAR_RECIPE = {"epochs": 240, "batch_size": 64, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
                "decay_at": [0.625, 0.75, 0.875], "decay_rate": 0.1, "augment": True}  # mdistiller, CIFAR-100


@dataclass(frozen=True)
class Protocol:
    """What a scale may change: data size, epochs. None means the dataset's recipe."""

    epochs: int | None = None  # student (and online teacher) epochs
    teacher_epochs: int | None = None  # epochs of a teacher trained here
    batch_size: int | None = None
    n_train: int | None = None  # at most this many training images
    n_test: int | None = None  # at most this many test images
    image_size: int | None = None  # side after average pooling (MNIST 28 -> 14); None: native
    teacher_seed: int = 0  # the teacher is one network shared by every seed's cells
    rewind_epoch: int = 1  # epoch of the teacher's run whose weights IMP rewinds to (1-based)
    sparsities: list[float] = field(default_factory=lambda: [0.5, 0.7, 0.9])
    finetune_epochs: int = 40  # training after a round that keeps the trained weights
    finetune_lr_scale: float = 0.1  # x the recipe's learning rate for that fine-tuning
    retrain_epochs: int | None = None  # training after a rewind; None: the recipe's epochs
    max_rounds: int = 40  # pruning rounds at most, over all targets
    eval_batch_size: int = 256  # also the batch of the inference-time measurement

    def __post_init__(self):
        if not self.sparsities or any(not 0 < s < 1 for s in self.sparsities):
            raise ValueError(f"sparsities must be fractions in (0, 1), got {self.sparsities}")
        if self.rewind_epoch < 1:
            raise ValueError(f"rewind_epoch counts from 1, got {self.rewind_epoch}")


@dataclass(frozen=True)
class Setting:
    name: str


@dataclass(frozen=True)
class Dataset:
    """A teacher-student pair on one image set, with the training recipe of its papers."""

    source: str  # data.load name: "digits", "mnist", "cifar100", "imagenet"
    teacher: str  # models.build name
    student: str
    description: str
    needs_data_root: bool = True
    teacher_weights: str = ""  # "": trained here; else a file under the data root (published weights)
    teacher_sha256: str = ""  # checked when set
    recipe: dict = field(default_factory=dict)  # train.Recipe fields


SMALL_RECIPE = {"epochs": 10, "batch_size": 64, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
                "decay_at": [0.625, 0.75, 0.875], "decay_rate": 0.1, "augment": False}
CRD_TEACHERS = "models/cifar100_teachers"  # mdistiller's cifar_teachers.tar, unpacked under the data root

DATASETS = {
    "digits": Dataset("digits", "cnn_teacher", "cnn_student", "scikit-learn digits, 8x8, 1200 train / 597 test", False, recipe=SMALL_RECIPE),
    "mnist": Dataset("mnist", "cnn_teacher", "cnn_student", "MNIST test set split 6000 / 4000, from the data root", recipe=SMALL_RECIPE),
    "cifar100_resnet32x4_resnet8x4": Dataset("cifar100", "resnet32x4", "resnet8x4", "CIFAR-100, ResNet32x4 -> ResNet8x4 (CRD teacher)",
                                             teacher_weights=f"{CRD_TEACHERS}/resnet32x4_vanilla/ckpt_epoch_240.pth", recipe=CIFAR_RECIPE),
    "cifar100_vgg13_vgg8": Dataset("cifar100", "vgg13", "vgg8", "CIFAR-100, VGG13 -> VGG8 (CRD teacher)",
                                   teacher_weights=f"{CRD_TEACHERS}/vgg13_vanilla/ckpt_epoch_240.pth", recipe=CIFAR_RECIPE),
    "cifar100_wrn40_2_wrn40_1": Dataset("cifar100", "wrn_40_2", "wrn_40_1", "CIFAR-100, WRN-40-2 -> WRN-40-1 (CRD teacher)",
                                        teacher_weights=f"{CRD_TEACHERS}/wrn_40_2_vanilla/ckpt_epoch_240.pth", recipe=CIFAR_RECIPE),
    "cifar100_resnet32x4_dense": Dataset("cifar100", "resnet32x4", "resnet8x4", "CIFAR-100, ResNet32x4 trained here (keeps its rewind weights, for pruning)",
                                         recipe=CIFAR_RECIPE),
    "imagenet_r34_r18": Dataset("imagenet", "resnet34", "resnet18", "ImageNet-1k, ResNet34 -> ResNet18 (torchvision teacher)",
                                teacher_weights="models/imagenet/resnet34.pth",
                                recipe={"epochs": 100, "batch_size": 512, "lr": 0.2, "momentum": 0.9, "weight_decay": 1e-4,
                                        "decay_at": [0.3, 0.6, 0.9], "decay_rate": 0.1, "augment": True}),
}

DISTILL_METRICS = {
    "top1_pct": Metric("%", "higher", "student test top-1 at the final epoch"),
    "best_top1_pct": Metric("%", "higher", "student test top-1, best epoch (max over epochs, as the CIFAR-100 repos report: selects on test)"),
    "ece_pct": Metric("%", "lower", "expected calibration error, 15 equal-width confidence bins"),
    "nll": Metric("nats", "lower", "test negative log-likelihood"),
    "entropy": Metric("nats", "", "student mean predictive entropy on the test set"),
    "teacher_kl": Metric("nats", "lower", "KL(teacher || student) at T = 1, test mean (online methods: their co-trained teacher)"),
    "teacher_top1_pct": Metric("%", "higher", "the teacher's test top-1"),
    "student_params": Metric("count", "", "student parameters (with Dual-Head KD's auxiliary head)"),
    "dense_top1_pct": Metric("%", "higher", "the dense network's test top-1 before pruning"),
    "dense_params": Metric("count", "", "nonzero parameters of the dense network"),
    "dense_infer_ms": Metric("ms per 1k images", "lower", "inference wall time of the dense network"),
}
PER_SPARSITY = {  # <name>_s<NN>: at sparsity NN% of the prunable weights
    "top1_pct": Metric("%", "higher", "test top-1 of the pruned network"),
    "drop_pct": Metric("points", "lower", "dense top-1 minus pruned top-1"),
    "pq_index": Metric("", "", "PQ Index (p 0.5, q 1) of the surviving weights"),
    "params": Metric("count", "", "nonzero parameters of the pruned network"),
    "infer_ms": Metric("ms per 1k images", "lower", "inference wall time of the pruned network (dense kernels)"),
    "rounds": Metric("count", "", "pruning rounds taken to reach the sparsity"),
    "sparsity": Metric("fraction", "", "zeros among the prunable weights (equals the target)"),
}
_PATTERN = re.compile(r"^(" + "|".join(PER_SPARSITY) + r")_s(\d+)$")


class CompressionFamily(Family):
    name = "compression"
    warm_imports = ("entrobench.protocols.compression.run",)
    Protocol = Protocol
    Setting = Setting
    Dataset = Dataset
    datasets = DATASETS
    metrics = DISTILL_METRICS

    def metric(self, name: str, scaled=None) -> Metric | None:
        match = _PATTERN.match(name)
        if match is None:
            return self.metrics.get(name)
        if scaled is not None and int(match.group(2)) not in {round(100 * s) for s in scaled.protocol.sparsities}:
            return None
        base = PER_SPARSITY[match.group(1)]
        return Metric(base.unit, base.direction, f"{base.description}, at {match.group(2)}% sparsity")

    def metric_names(self, scaled=None) -> list[str]:
        sparsities = scaled.protocol.sparsities if scaled is not None else Protocol().sparsities
        return list(self.metrics) + [f"{m}_s{round(100 * s)}" for s in sparsities for m in PER_SPARSITY]

    def cell_builds(self, scaled, dataset: str, setting, seed: int) -> dict[str, Build]:
        return {"teacher": teacher_build(scaled.protocol, dataset, scaled.card.dataset(dataset))}

    def cell_sources(self, scaled, dataset: str, setting) -> list[Path]:
        return [HERE / f for f in ("run.py", "distill.py", "prune.py", "evaluate.py", "models.py", "data.py", "train.py")]

    def run_cell(self, run) -> dict:
        from entrobench.protocols.compression.run import run_cell

        return run_cell(run, run.dataset or self.datasets[run.config["dataset"]])

    def draw(self, card, scale: str, records: list[dict], out_dir: Path) -> list[Path]:
        from entrobench.protocols.compression.plots import draw

        return draw(card, scale, records, out_dir)


def recipe(protocol: Protocol, dataset: Dataset, epochs: int | None) -> dict:
    """The dataset's training recipe with the scale's epochs and batch size."""
    out = dict(dataset.recipe)
    if epochs is not None:
        out["epochs"] = epochs
    if protocol.batch_size is not None:
        out["batch_size"] = protocol.batch_size
    return out


def teacher_build(protocol: Protocol, name: str, dataset: Dataset) -> Build:
    config = {
        "source": dataset.source, "teacher": dataset.teacher, "n_train": protocol.n_train, "n_test": protocol.n_test,
        "image_size": protocol.image_size, "seed": protocol.teacher_seed, "teacher_weights": dataset.teacher_weights,
        "teacher_sha256": dataset.teacher_sha256,
    }
    if not dataset.teacher_weights:  # trained here: the schedule and the rewind snapshot matter
        config.update(recipe=recipe(protocol, dataset, protocol.teacher_epochs), rewind_epoch=protocol.rewind_epoch)
    data_files = (dataset.teacher_weights,) if dataset.teacher_weights else ()
    return Build(owner="compression", kind="teacher", name=f"{name}-{dataset.teacher}", make="entrobench.protocols.compression.train:make_teacher",
                 config=config, sources=tuple(str(HERE / f) for f in ("train.py", "models.py", "data.py", "evaluate.py")),
                 data_files=data_files, heavy=True)


FAMILY = CompressionFamily()
