"""Image sets of the compression family, in memory as float32 (N, C, H, W) in [0, 1].

- "digits": scikit-learn's `load_digits` (1797 images, 8x8, values 0..16 scaled to [0, 1]),
  native size, split by a fixed permutation into 1200 train / 597 test (as the TTA family splits it).
- "mnist": the MNIST *test* set from `<root>/mnist_test/t10k-*-ubyte.gz` (read by
  entrobench.data.sources), split 6000 train / 4000 test: the 60k training set is not available
  offline, so numbers are not comparable with the official split. `image_size` 14 averages 2x2
  pixel blocks (smoke: a quarter of the compute).
- "cifar100": `<root>/cifar-100-python/{train,test}` (the python release; read with the same
  restricted unpickler as CIFAR-10, so a tampered file cannot run code), 50,000 / 10,000.
- "imagenet": the ImageNet train/val trees are too large to hold in memory; the streaming loader
  is not written yet, so cells on it are skipped with that reason (the DAG still plans them).

`n_train` / `n_test` take the first images of each part (None: all). A missing file raises
`record.Skip` with where it was looked for.
"""
from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from entrobench.data import sources
from entrobench.record import Skip

DIGITS_SPLIT = (1200, 597)
CIFAR100_DIR = "cifar-100-python"


@dataclass
class Split:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    fingerprint: str  # 16 hex of sha256 over the raw source

    @property
    def in_channels(self) -> int:
        return self.x_train.shape[1]


def load(source: str, data_root: Path | None, n_train: int | None = None, n_test: int | None = None, image_size: int | None = None) -> Split:
    readers = {"digits": _digits, "mnist": _mnist, "cifar100": _cifar100, "imagenet": _imagenet}
    if source not in readers:
        raise ValueError(f"unknown image set {source!r} (expected one of: {', '.join(readers)})")
    try:
        x_tr, y_tr, x_te, y_te, n_classes, fingerprint = readers[source](data_root)
    except sources.DataUnavailable as err:
        raise Skip(str(err)) from None
    split = Split(*(torch.as_tensor(a[:n]) for a, n in ((x_tr, n_train), (y_tr, n_train), (x_te, n_test), (y_te, n_test))), n_classes, fingerprint)
    if image_size and image_size != split.x_train.shape[-1]:
        split.x_train, split.x_test = (F.adaptive_avg_pool2d(x, image_size) for x in (split.x_train, split.x_test))
    return split


def _digits(data_root):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(y))
    train, test = order[: DIGITS_SPLIT[0]], order[DIGITS_SPLIT[0]:]
    fingerprint = hashlib.sha256(digits.images.tobytes() + y.tobytes()).hexdigest()[:16]
    return x[train], y[train], x[test], y[test], 10, fingerprint


def _mnist(data_root):
    split = sources.load_clean("mnist", data_root, None, None)  # the fixed 6000 / 4000 permutation split
    return split.x_train, split.y_train, split.x_test, split.y_test, split.n_classes, split.fingerprint


def _cifar100(data_root):
    if data_root is None:
        raise sources.DataUnavailable("CIFAR-100 needs a data root (see README: Data)")
    folder = Path(data_root) / CIFAR100_DIR
    digest = hashlib.sha256()
    parts = [_cifar100_part(folder / name, digest) for name in ("train", "test")]
    return (*parts[0], *parts[1], 100, digest.hexdigest()[:16])


def _cifar100_part(path: Path, digest) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise sources.DataUnavailable(f"CIFAR-100 not found at {path} (the python release cifar-100-python.tar.gz unpacks to {CIFAR100_DIR}/)")
    try:
        with open(path, "rb") as f:
            part = sources.CifarUnpickler(f, encoding="bytes").load()
        data, labels = np.asarray(part[b"data"]), np.asarray(part[b"fine_labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as err:
        raise ValueError(f"{path}: not a CIFAR-100 python file ({type(err).__name__}: {err})") from err
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or labels.shape != data.shape[:1]:
        raise ValueError(f"{path}: expected uint8 (N, 3072) data with N fine labels, got {data.dtype} {data.shape} and {labels.shape}")
    digest.update(data.tobytes())
    return data.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0, labels


def _imagenet(data_root):
    raise sources.DataUnavailable("ImageNet training needs a streaming loader (RandomResizedCrop over 1.28M JPEGs), not written yet in the compression family")


def augment_cifar(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The CIFAR recipe of CRD / mdistiller: 4-pixel zero padding, a random 32x32 crop and a random
    horizontal flip, per image: (B, C, H, W) -> same."""
    b, _, h, w = x.shape
    padded = F.pad(x, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (b,), generator=generator)
    dx = torch.randint(0, 9, (b,), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None].expand(b, x.shape[1], h, w + 8)
    out = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :].expand(b, x.shape[1], h, w)
    out = out.gather(3, cols)
    flip = torch.rand(b, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(3), out)
