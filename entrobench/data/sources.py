"""Clean image sets and pre-corrupted benchmarks, read from a configurable data root.

- "digits": scikit-learn's 8x8 digits (bundled, no data root), upsampled to 32x32.
- "mnist": the MNIST *test* set (10,000 images) from <data_root>/mnist_test/. The 60k training
  set is not available offline, so the source model trains on a fixed 6000-image part of the
  test set and is evaluated on the other 4000; these numbers are not comparable with results
  that train on the official training set.
- load_corrupted("cifar10_c"): the released CIFAR-10-C arrays (Hendrycks & Dietterich 2019),
  <data_root>/CIFAR-10-C/<corruption>.npy; fetch them with `python -m entrobench.data.download`.

A missing file raises DataUnavailable, whose message is the reason a table shows for the cell.
"""
from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from entrobench.data.corruptions import CORRUPTIONS, SEVERITIES

DATA_ROOT_ENV = "ENTROBENCH_DATA_ROOT"
CLEAN_SETS = ("digits", "mnist")
CORRUPTED_SETS = ("cifar10_c",)

# name: (train part, test part) of the fixed permutation split
_SPLIT_SIZES = {"digits": (1200, 597), "mnist": (6000, 4000)}
MNIST_DIR = "mnist_test"
MNIST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
CIFAR10_C_DIR = "CIFAR-10-C"
CIFAR10_C_PER_SEVERITY = 10_000


class DataUnavailable(Exception):
    """The data a cell needs is not on this machine; the message says where it was looked for."""


@dataclass(frozen=True)
class CleanSplit:
    x_train: np.ndarray  # float32 (N, 1, H, W) in [0, 1]
    y_train: np.ndarray  # int64 (N,)
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    fingerprint: str  # 16 hex of sha256 over the raw source arrays (not the split)


def default_data_root() -> Path | None:
    """$ENTROBENCH_DATA_ROOT if set, else ../shared/data beside the repository if it exists, else None."""
    env = os.environ.get(DATA_ROOT_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    shared = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return shared if shared.is_dir() else None


def load_clean(name: str, data_root: Path | None, n_train: int | None, n_test: int | None, split_seed: int = 0) -> CleanSplit:
    """A fixed permutation split of a clean image set; n_train / n_test take at most that many of
    the first images of each part (None: all of it)."""
    if name == "digits":
        images, labels, fingerprint = _read_digits()
    elif name == "mnist":
        images, labels, fingerprint = _read_mnist_test(data_root)
    else:
        raise ValueError(f"unknown clean image set {name!r} (expected one of: {', '.join(CLEAN_SETS)})")
    size_train, size_test = _SPLIT_SIZES[name]
    n_train = _count("n_train", n_train, size_train, name)
    n_test = _count("n_test", n_test, size_test, name)
    order = np.random.default_rng(split_seed).permutation(len(labels))
    train, test = order[:size_train][:n_train], order[size_train:][:n_test]
    return CleanSplit(
        x_train=np.ascontiguousarray(images[train]),
        y_train=labels[train],
        x_test=np.ascontiguousarray(images[test]),
        y_test=labels[test],
        n_classes=10,
        fingerprint=fingerprint,
    )


def load_corrupted(
    name: str, data_root: Path | None, corruption: str, severity: int, n: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A released pre-corrupted benchmark: x float32 (n, 3, 32, 32) in [0, 1], y int64 (n,).
    n: the first n images of that severity (None: all 10,000)."""
    if name not in CORRUPTED_SETS:
        raise ValueError(f"unknown corrupted benchmark {name!r} (expected one of: {', '.join(CORRUPTED_SETS)})")
    if corruption not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {corruption!r} (expected one of: {', '.join(CORRUPTIONS)})")
    if isinstance(severity, bool) or severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(map(str, SEVERITIES))}, got {severity!r}")
    folder = _require_root(data_root, "CIFAR-10-C") / CIFAR10_C_DIR
    images_path, labels_path = folder / f"{corruption}.npy", folder / "labels.npy"
    for path in (images_path, labels_path):
        if not path.is_file():
            raise DataUnavailable(
                f"CIFAR-10-C not found at {path} (see README: Data; fetch it with "
                f"`python -m entrobench.data.download cifar10_c --data-root {data_root}`)"
            )
    images = np.load(images_path, mmap_mode="r")  # 150 MB per corruption: read one severity only
    labels = np.load(labels_path, mmap_mode="r")
    # the release holds 5 x 10,000 images, severity 1 first; any 5 equal blocks are read the same way
    if (images.ndim != 4 or images.shape[1:] != (32, 32, 3) or images.dtype != np.uint8
            or len(images) % len(SEVERITIES) or labels.shape != images.shape[:1]):
        raise ValueError(
            f"{images_path}: expected uint8 (5 x {CIFAR10_C_PER_SEVERITY}, 32, 32, 3) with as many labels, "
            f"got {images.dtype} {images.shape} with labels {labels.shape}"
        )
    per_severity = len(images) // len(SEVERITIES)
    n = _count("n", n, per_severity, name)
    start = (severity - 1) * per_severity
    x = np.asarray(images[start : start + n]).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    y = np.asarray(labels[start : start + n]).astype(np.int64)
    return np.ascontiguousarray(x), y


# --- readers ---------------------------------------------------------------------------------------


def _read_digits() -> tuple[np.ndarray, np.ndarray, str]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    raw = digits.images  # (1797, 8, 8) float64, values 0..16
    labels = digits.target.astype(np.int64)
    up = _bilinear_upsample_matrix(8, 32)
    images = np.matmul(np.matmul(up, raw / 16.0), up.T)  # bilinear, half-pixel centres, edges clamped
    images = np.clip(images, 0.0, 1.0).astype(np.float32)[:, None]
    return images, labels, _fingerprint(raw.tobytes(), labels.tobytes())


def _read_mnist_test(data_root: Path | None) -> tuple[np.ndarray, np.ndarray, str]:
    folder = _require_root(data_root, "MNIST test set") / MNIST_DIR
    paths = [folder / f for f in MNIST_FILES]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DataUnavailable(f"MNIST test set not found at {folder} (missing {', '.join(missing)}; see README: Data)")
    # Read the idx content directly: a re-gzipped copy differs from the official .gz in its
    # header timestamp only, so checksums of the .gz files would wrongly reject it.
    images_raw, labels_raw = (_gunzip(p) for p in paths)
    images = _parse_idx(images_raw, paths[0], magic=0x803, dims=3)
    labels = _parse_idx(labels_raw, paths[1], magic=0x801, dims=1)
    if images.shape != (10_000, 28, 28) or labels.shape != (10_000,):
        raise ValueError(f"{folder}: expected 10000 28x28 images and 10000 labels, got {images.shape} and {labels.shape}")
    x = (images.astype(np.float32) / 255.0)[:, None]
    return x, labels.astype(np.int64), _fingerprint(images_raw, labels_raw)


def _gunzip(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: not a readable gzip file ({err})") from err


def _parse_idx(raw: bytes, path: Path, magic: int, dims: int) -> np.ndarray:
    """idx format: big-endian magic (0x08 = uint8, then the number of dims), one uint32 per dim, data."""
    header = np.frombuffer(raw[: 4 * (1 + dims)], dtype=">u4")
    if len(header) != 1 + dims or header[0] != magic:
        raise ValueError(f"{path}: not an idx file with magic {magic:#x} (got {header[:1]})")
    shape = tuple(int(d) for d in header[1:])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 * (1 + dims))
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape}, found {data.size} bytes of data")
    return data.reshape(shape)


def _require_root(data_root: Path | None, what: str) -> Path:
    if data_root is None:
        raise DataUnavailable(f"{what} needs a data root: none set (set {DATA_ROOT_ENV}; see README: Data)")
    return Path(data_root)


def _count(key: str, value: int | None, available: int, name: str) -> int:
    if value is None:
        return available
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{key} must be a non-negative integer or None, got {value!r}")
    return min(int(value), available)  # a cap: one protocol serves sets of different sizes


def _bilinear_upsample_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) linear interpolation with half-pixel centres (PyTorch align_corners=False)."""
    pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    frac = pos - i0
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), i0), 1 - frac)
    np.add.at(m, (np.arange(n_out), i1), frac)
    return m


def _fingerprint(*chunks: bytes) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()[:16]
