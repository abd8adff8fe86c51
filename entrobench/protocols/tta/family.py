"""Test-time adaptation: what a TTA card may say (schema), its datasets and metrics.

Imports nothing heavy: the Snakefile reads this to build the DAG; `run.py` does the work.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from entrobench.data.corruption_types import CORRUPTIONS, TABLES
from entrobench.hashing import content_hash
from entrobench.metrics import Metric


@dataclass(frozen=True)
class Protocol:
    corruptions: list[str] = field(default_factory=lambda: list(CORRUPTIONS))  # ImageNet-C names, table columns
    severity: int = 5  # 1..5, ImageNet-C severity
    # corruption constants for images made here: "auto" (CIFAR-10-C's up to 64 px, else ImageNet-C's),
    # "cifar10_c", "imagenet_c", or "hybrid" (ImageNet-C strength per pixel, CIFAR-10-C spatial)
    corruption_table: str = "auto"
    architecture: str = "small_cnn"  # entrobench.models.zoo.build_model name
    source_weights: str = "train"  # "train": trained here on the clean split; else a file under the data root
    n_train: int | None = None  # at most this many clean training images (None: all of the split)
    n_test: int | None = None  # at most this many test images per corruption (None: all of the split)
    train_epochs: int = 8  # source model: Adam + OneCycle, +-2 px shifts
    train_batch_size: int = 64
    train_peak_lr: float = 2e-3  # OneCycle peak learning rate
    fisher_samples: int = 500  # clean in-distribution images handed to prepare() (EATA's Fisher)
    curve_every: int = 1  # keep every n-th batch in the per-batch curves (batch-size-1 streams are long)
    amp: bool = False  # bf16 autocast for forward and backward when the cell runs on a GPU (ignored on CPU)

    def __post_init__(self):
        unknown = [c for c in self.corruptions if c not in CORRUPTIONS]
        if unknown:
            raise ValueError(f"unknown corruption {unknown[0]!r} (expected some of: {', '.join(CORRUPTIONS)})")
        if self.corruption_table not in TABLES:
            raise ValueError(f"corruption_table must be one of {', '.join(TABLES)}, got {self.corruption_table!r}")
        if not 1 <= self.severity <= 5:
            raise ValueError(f"severity must be 1..5, got {self.severity}")


@dataclass(frozen=True)
class Setting:
    name: str
    batch_size: int = 64
    continual: bool = False  # False: reset the model at every corruption; True: one stream, never reset
    norm: str = "bn"  # normalization of the source model: "bn" or "gn"
    max_samples: int | None = None  # cap on test images per corruption (batch size 1 is slow on CPU)
    label_order: str = "shuffled"  # "shuffled", or "sorted" by label: SAR's online label shift

    def __post_init__(self):
        if self.norm not in ("bn", "gn"):
            raise ValueError(f"norm must be 'bn' or 'gn', got {self.norm!r}")


@dataclass(frozen=True)
class Dataset:
    clean: str  # entrobench.data.sources.load_clean name: the source model's (or the Fisher's) clean images
    needs_data_root: bool
    description: str
    corrupted_on_disk: str = ""  # load_corrupted name for benchmarks released already corrupted


DATASETS = {
    "digits_c": Dataset("digits", False, "scikit-learn digits, 8x8 upsampled to 32x32, corrupted here"),
    "mnist_c": Dataset("mnist", True, "MNIST test set split 6000/4000, 28x28, corrupted here"),
    "cifar10_c": Dataset("cifar10", True, "CIFAR-10-C (Hendrycks & Dietterich 2019), 32x32 RGB", corrupted_on_disk="cifar10_c"),
    "imagenet_c": Dataset("imagenet_val", True, "ImageNet-C (Hendrycks & Dietterich 2019), 224x224 RGB", corrupted_on_disk="imagenet_c"),
}

METRICS = {
    "error_pct": Metric("%", "lower", "top-1 error on the test stream"),
    "backward_per_1k": Metric("per 1k samples", "lower", "samples back-propagated (x passes) per 1000 test samples: EATA's #backwards"),
    "used_pct": Metric("%", "lower", "share of samples that entered an update's loss"),
    "majority_frac": Metric("fraction", "lower", "largest share of one predicted class (collapse detector)"),
    "entropy_mean": Metric("nats", "lower", "mean prediction entropy over the stream"),
    "resets": Metric("count", "lower", "model recoveries (SAR)"),
    "adapt_s": Metric("s", "lower", "time spent in adaptation, data preparation excluded"),
}


def columns(protocol: Protocol) -> list[str]:
    """The per-domain columns of the table: one per corruption."""
    return list(protocol.corruptions)


def data_config(protocol: Protocol, dataset: str) -> dict:
    """What the prepared (clean) data depends on. Benchmarks released corrupted need clean images
    only for EATA's Fisher information, so only that many."""
    if DATASETS[dataset].corrupted_on_disk:
        return {"dataset": dataset, "n_train": protocol.fisher_samples, "n_test": 0}
    return {"dataset": dataset, "n_train": protocol.n_train, "n_test": protocol.n_test}


def source_config(protocol: Protocol, dataset: str, norm: str) -> dict:
    """What the source model depends on: shared by every method, seed and card that agree on it."""
    return {
        **data_config(protocol, dataset),
        "architecture": protocol.architecture,
        "norm": norm,
        "source_weights": protocol.source_weights,
        "train_epochs": protocol.train_epochs,
        "train_batch_size": protocol.train_batch_size,
        "train_peak_lr": protocol.train_peak_lr,
    }


CACHE = "results/_cache/tta"


def data_path(protocol: Protocol, dataset: str) -> str:
    return f"{CACHE}/data/{dataset}-{content_hash(data_config(protocol, dataset))}.npz"


def source_path(protocol: Protocol, dataset: str, norm: str) -> str:
    config = source_config(protocol, dataset, norm)
    return f"{CACHE}/source/{dataset}-{protocol.architecture}-{norm}-{content_hash(config)}.pt"


def stream_config(protocol: Protocol, dataset: str, seed: int) -> dict:
    """What a seed's corrupted test images depend on: every method of every card shares them."""
    return {
        **data_config(protocol, dataset),
        "corruptions": protocol.corruptions,
        "severity": protocol.severity,
        "corruption_table": protocol.corruption_table,
        "seed": seed,
    }


def stream_path(protocol: Protocol, dataset: str, seed: int) -> str:
    return f"{CACHE}/streams/{dataset}-{content_hash(stream_config(protocol, dataset, seed))}.npz"


def cell_inputs(protocol: Protocol, setting: Setting, dataset: str, seed: int) -> dict[str, str]:
    """The cached files a cell reads; the DAG builds them with the rules in workflows/rules/tta.smk.
    Benchmarks released corrupted are read by the cell itself; the others are corrupted once per
    seed, by their own job."""
    inputs = {"data": data_path(protocol, dataset), "source": source_path(protocol, dataset, setting.norm)}
    if not DATASETS[dataset].corrupted_on_disk:
        inputs["stream"] = stream_path(protocol, dataset, seed)
    return inputs
