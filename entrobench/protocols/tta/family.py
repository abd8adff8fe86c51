"""Test-time adaptation: what a TTA card may say (schema), its datasets and metrics, the cached
inputs of a cell (clean data, corrupted streams, the source model) and where the work is done.

Imports nothing heavy: the DAG reads this to plan; `run.py` does the work.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from entrobench.data.corruption_types import CORRUPTIONS, TABLES
from entrobench.family import Build, CellRun, Family
from entrobench.metrics import Metric
from entrobench.models.published import PUBLISHED, published_weights


@dataclass(frozen=True)
class Protocol:
    corruptions: list[str] = field(default_factory=lambda: list(CORRUPTIONS))  # ImageNet-C names, table columns
    severity: int = 5  # 1..5, ImageNet-C severity
    # corruption constants for images made here: "auto" (CIFAR-10-C's up to 64 px, else ImageNet-C's),
    # "cifar10_c", "imagenet_c", or "hybrid" (ImageNet-C strength per pixel, CIFAR-10-C spatial)
    corruption_table: str = "auto"
    architecture: str = "small_cnn"  # entrobench.models.zoo.build_model name
    # "train": trained here on the clean split; "published": the published weights for the
    # architecture and the setting's norm (entrobench.models.published: a GroupNorm setting gets
    # GroupNorm weights); or one name of that catalog, for every setting
    source_weights: str = "train"
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
        for name in ("n_train", "n_test", "train_epochs", "train_batch_size", "curve_every"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.fisher_samples < 0 or not self.train_peak_lr > 0:
            raise ValueError(f"fisher_samples must be >= 0 and train_peak_lr > 0, got {self.fisher_samples} and {self.train_peak_lr}")
        if self.source_weights not in ("train", PUBLISHED_FOR_NORM, *PUBLISHED):
            raise ValueError(f"source_weights must be 'train', '{PUBLISHED_FOR_NORM}' or one of {', '.join(PUBLISHED)}, got {self.source_weights!r}")

    def weights(self, norm: str) -> str:
        """'train', or the catalog name of the weights a model with this norm loads."""
        if self.source_weights == PUBLISHED_FOR_NORM:
            return published_weights(self.architecture, norm).name
        return self.source_weights


PUBLISHED_FOR_NORM = "published"


@dataclass(frozen=True)
class Setting:
    name: str
    batch_size: int = 64
    continual: bool = False  # False: reset the model at every corruption; True: one stream, never reset
    norm: str = "bn"  # normalization of the source model: "bn" or "gn"
    max_samples: int | None = None  # cap on test images per corruption (batch size 1 is slow on CPU)
    # "shuffled", or "sorted" by label (classes one after another: the extreme of a label shift)
    label_order: str = "shuffled"
    # Online label shift as SAR's code makes it (entrobench.data.label_shift): the imbalance ratio
    # (1: uniform labels; SAR's and DeYO's default 500,000: almost a pure class order). The stream
    # has twice as many samples as the corruption has images, drawn with replacement in blocks of
    # one major class each, the same for every corruption; None: no label shift
    label_shift: float | None = None

    def __post_init__(self):
        if self.norm not in ("bn", "gn"):
            raise ValueError(f"norm must be 'bn' or 'gn', got {self.norm!r}")
        if self.batch_size < 1 or (self.max_samples is not None and self.max_samples < 1):
            raise ValueError(f"batch_size and max_samples must be >= 1, got {self.batch_size} and {self.max_samples}")
        if self.label_order not in ("shuffled", "sorted"):
            raise ValueError(f"label_order must be 'shuffled' or 'sorted', got {self.label_order!r}")
        if self.label_shift is not None and not self.label_shift >= 1:
            raise ValueError(f"label_shift is an imbalance ratio >= 1 (1: uniform labels), got {self.label_shift}")
        if self.label_shift is not None and self.label_order != "shuffled":
            raise ValueError("label_shift makes its own order: leave label_order at 'shuffled'")


@dataclass(frozen=True)
class Dataset:
    """An image-classification dataset. Built in (`loader`: a clean set of entrobench.data.sources)
    or declared as data in configs/_datasets/<name>.yaml (`format` and the arrays or folders):
    images are corrupted here with the protocol's corruptions, unless `corrupted_on_disk` names a
    benchmark released already corrupted."""

    description: str = ""
    loader: str = ""  # built-in: entrobench.data.sources.load_clean name
    corrupted_on_disk: str = ""  # load_corrupted name for benchmarks released already corrupted
    # declared datasets (entrobench.data.declared reads them): "npz", "npy", "h5", "idx" or "image_folder"
    format: str = ""
    root: str = ""  # folder the paths below are relative to; "": the data root; relative: to the data root
    path: str = ""  # npz, h5: the file holding the arrays
    images: str = ""  # npz/h5: array name; npy/idx: file; image_folder: folder of <class>/<image> files
    labels: str = ""  # npz/h5: array name; npy/idx: file; image_folder: unused (class = sorted folder position)
    test_images: str = ""  # the dataset's own test split, as `images`; empty: a random split of `images`
    test_labels: str = ""
    test_fraction: float = 0.4  # the random split's test share (MNIST's 4000 of 10000)
    split_seed: int = 0
    n_classes: int = 0  # 0: read from the labels (max + 1)
    channels: int = 0  # 1 or 3; 0: as stored (image folders: 3)
    image_size: int = 0  # square side the images must have (0: as stored); a mismatch is an error
    layout: str = "nhwc"  # arrays: "nhwc" or "nchw" ("nhw" grayscale is read as one channel)
    pixel_max: float = 255.0  # value of a white pixel as stored: images are divided by it into [0, 1]

    def __post_init__(self):
        if bool(self.loader) == bool(self.format):
            raise ValueError("a dataset has a built-in `loader` or a `format`, one of them")
        if self.format and self.format not in DECLARED_FORMATS:
            raise ValueError(f"format: expected one of {', '.join(DECLARED_FORMATS)}, got {self.format!r}")
        if self.layout not in ("nhwc", "nchw"):
            raise ValueError(f"layout: expected 'nhwc' or 'nchw', got {self.layout!r}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction: expected a share in (0, 1), got {self.test_fraction}")
        if self.channels not in (0, 1, 3) or self.n_classes < 0 or self.image_size < 0 or not self.pixel_max > 0:
            raise ValueError("channels must be 0, 1 or 3; n_classes and image_size >= 0; pixel_max > 0")
        if self.format and not self.images:
            raise ValueError("images: a declared dataset names its images (array, file or folder)")

    @property
    def needs_data_root(self) -> bool:
        return self.loader not in NO_DATA_ROOT and not (self.root and Path(self.root).is_absolute())


DECLARED_FORMATS = ("npz", "npy", "h5", "idx", "image_folder")
NO_DATA_ROOT = ("digits",)  # scikit-learn ships it

DATASETS = {
    "digits_c": Dataset("scikit-learn digits, 8x8 upsampled to 32x32, corrupted here", loader="digits"),
    "mnist_c": Dataset("MNIST test set split 6000/4000, 28x28, corrupted here", loader="mnist"),
    "cifar10_c": Dataset("CIFAR-10-C (Hendrycks & Dietterich 2019), 32x32 RGB", loader="cifar10", corrupted_on_disk="cifar10_c"),
    "imagenet_c": Dataset("ImageNet-C (Hendrycks & Dietterich 2019), 224x224 RGB", loader="imagenet_val", corrupted_on_disk="imagenet_c"),
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


def data_config(protocol: Protocol, dataset_name: str, dataset: Dataset) -> dict:
    """What the prepared (clean) data depends on. Benchmarks released corrupted need clean images
    only for EATA's Fisher information, so only that many."""
    config = {"dataset": dataset_name, "n_train": protocol.n_train, "n_test": protocol.n_test}
    if dataset.corrupted_on_disk:
        config.update(n_train=protocol.fisher_samples, n_test=0)
    if dataset.format:  # declared in YAML: its declaration is what the data is made of
        config["declared"] = asdict(dataset)
    return config


def source_config(protocol: Protocol, data: dict, norm: str) -> dict:
    """What the source model depends on: shared by every method, seed and card that agree on it.
    Published weights are named as resolved for the norm, so GN settings get GN weights."""
    return {
        **data,
        "architecture": protocol.architecture,
        "norm": norm,
        "source_weights": protocol.weights(norm),
        "train_epochs": protocol.train_epochs,
        "train_batch_size": protocol.train_batch_size,
        "train_peak_lr": protocol.train_peak_lr,
    }


def stream_config(protocol: Protocol, data: dict, seed: int) -> dict:
    """What a seed's corrupted test images depend on: every method of every card shares them."""
    return {**data, "corruptions": protocol.corruptions, "severity": protocol.severity, "corruption_table": protocol.corruption_table, "seed": seed}


_HERE = Path(__file__).resolve().parent
_RUN = "entrobench.protocols.tta.run"


class TTA(Family):
    name = "tta"
    warm_imports = ("entrobench.protocols.tta.run",)
    Protocol = Protocol
    Setting = Setting
    Dataset = Dataset
    datasets = DATASETS
    metrics = METRICS

    def columns(self, protocol: Protocol) -> list[str]:
        """The per-domain columns of the table: one per corruption."""
        return list(protocol.corruptions)

    def check(self, scaled) -> None:
        """Published weights exist for the architecture and every setting's norm, and a weights
        name given outright fits them."""
        protocol = scaled.protocol
        for setting in scaled.settings:
            name = protocol.weights(setting.norm)  # raises (one line) where none is published
            if name != "train" and (PUBLISHED[name].arch, PUBLISHED[name].norm) != (protocol.architecture, setting.norm):
                raise ValueError(f"protocol.source_weights: {name} are {PUBLISHED[name].arch}/{PUBLISHED[name].norm} weights, "
                                 f"setting {setting.name} builds {protocol.architecture}/{setting.norm}")

    def setting_config(self, setting: Setting) -> dict:
        """Without `label_shift` while it is unset: the field came later, and cells without label
        shift keep the config hash, so the record paths, they had before it."""
        config = asdict(setting)
        if config["label_shift"] is None:
            del config["label_shift"]
        return config

    def cell_builds(self, scaled, dataset: str, setting: Setting, seed: int) -> dict[str, Build]:
        """The clean data, the source model for the setting's norm and, for sets corrupted here,
        the seed's corrupted stream. Benchmarks released corrupted are read by the cell itself."""
        protocol, spec = scaled.protocol, scaled.card.dataset(dataset)
        data_cfg = data_config(protocol, dataset, spec)
        files = _data_files(spec, data_cfg)
        data = Build("tta", "data", dataset, f"{_RUN}:prepare_data", data_cfg, data_files=files,
                     sources=(str(_HERE.parent.parent / "data" / "sources.py"), str(_HERE.parent.parent / "data" / "declared.py")))
        weights = protocol.weights(setting.norm)
        source = Build("tta", "source", f"{dataset}-{protocol.architecture}-{setting.norm}", f"{_RUN}:train_source",
                       source_config(protocol, data_cfg, setting.norm), inputs={"data": data}, sources=(str(_HERE / "run.py"),),
                       data_files=() if weights == "train" else (PUBLISHED[weights].path,),
                       heavy=weights == "train")  # training wants the scale's GPU; checking staged weights does not
        builds = {"data": data, "source": source}
        if not spec.corrupted_on_disk:
            builds["stream"] = Build("tta", "stream", dataset, f"{_RUN}:corrupt_stream", stream_config(protocol, data_cfg, seed),
                                     inputs={"data": data}, sources=(str(_HERE.parent.parent / "data" / "corruptions.py"),))
        return builds

    def cell_sources(self, scaled, dataset: str, setting: Setting) -> list[Path]:
        return [_HERE / "run.py"]

    def cell_data_files(self, scaled, dataset: str, setting: Setting) -> list[str]:
        spec = scaled.card.dataset(dataset)
        return list(CORRUPTED_FILES.get(spec.corrupted_on_disk, ()))

    def stage_needs(self, scaled) -> list[str]:
        """The data sets' released files and clean images, and the published source weights of
        every setting's norm (entrobench.stage.CATALOG names). Sets made here or declared in YAML
        need nothing fetched."""
        from entrobench import stage

        datasets = [d for d in scaled.datasets if d in stage.DATASET_ITEMS]
        weights = [w for w in dict.fromkeys(scaled.protocol.weights(s.norm) for s in scaled.settings) if w != "train"]
        return list(dict.fromkeys(stage.needs(datasets) + weights))

    def cell_work(self, scaled, dataset: str, setting: Setting, method: str):
        """Images through the model: every corruption's stream (a label-shift stream is twice the
        images it draws from); None where the number of images is not known before the data is read."""
        from entrobench.plan import Work

        protocol = scaled.protocol
        n = STREAM_IMAGES.get(dataset, protocol.n_test)
        if n is None:
            return None
        n = min(n, protocol.n_test or n) * (2 if setting.label_shift is not None else 1)
        n = min(n, setting.max_samples or n)
        return Work(images=len(protocol.corruptions) * n, arch=protocol.architecture, method=method, batch_size=setting.batch_size)

    def run_cell(self, run: CellRun) -> dict:
        from entrobench.protocols.tta.run import run_cell

        return run_cell(run)

    def draw(self, card, scale, records, out_dir):
        from entrobench.protocols.tta.plots import draw

        return draw(card, scale, records, out_dir)


# What the cached data reads under the data root (its presence decides whether a skip is stale)
CLEAN_FILES = {
    "mnist": ("mnist_test/t10k-images-idx3-ubyte.gz", "mnist_test/t10k-labels-idx1-ubyte.gz"),
    "cifar10": ("cifar-10-batches-py/test_batch",),
    "imagenet_val": ("imagenet/val",),
}
CORRUPTED_FILES = {"cifar10_c": ("CIFAR-10-C/labels.npy",), "imagenet_c": ("ImageNet-C",)}
# Test images per corruption of the built-in sets, for the cost plan (n_test may cap them)
STREAM_IMAGES = {"imagenet_c": 50_000, "cifar10_c": 10_000, "mnist_c": 4000, "digits_c": 597}


def _data_files(spec: Dataset, data_cfg: dict) -> tuple[str, ...]:
    files = list(CLEAN_FILES.get(spec.loader, ())) + list(CORRUPTED_FILES.get(spec.corrupted_on_disk, ()))
    if spec.format and not (spec.root and Path(spec.root).is_absolute()):
        files += [str(Path(spec.root) / name) for name in (spec.path, spec.images, spec.labels, spec.test_images, spec.test_labels) if name]
    return tuple(files)


FAMILY = TTA()
