"""Clean image sets and pre-corrupted benchmarks, read from a configurable data root.

- "digits": scikit-learn's 8x8 digits (bundled, no data root), upsampled to 32x32.
- "mnist": the MNIST *test* set (10,000 images) from <data_root>/mnist_test/. The 60k training
  set is not available offline, so the source model trains on a fixed 6000-image part of the
  test set and is evaluated on the other 4000; these numbers are not comparable with results
  that train on the official training set.
- "cifar10": the python release, <data_root>/cifar-10-batches-py/. With data_batch_1..5 there,
  x_train comes from the 50,000 training images and x_test from test_batch; with test_batch
  alone, its 10,000 images are split 6000/4000 as the MNIST test set is. CIFAR-10-C is made from
  those same 10,000 test images, so a Fisher computed on the 6000 part has seen clean versions of
  images in the corrupted stream.
- "imagenet_val": the ImageNet validation set as ImageFolder lays it out,
  <data_root>/imagenet/val/<wnid>/*.JPEG, split 60/40 (30,000 / 20,000) like the MNIST test set.
  ImageNet-C is made from these images; EATA's own code also takes its Fisher images from them.
- load_corrupted("cifar10_c"): the released CIFAR-10-C arrays (Hendrycks & Dietterich 2019),
  <data_root>/CIFAR-10-C/<corruption>.npy; fetch them with `python -m entrobench.data.download`.
- load_corrupted("imagenet_c"): the released ImageNet-C JPEGs,
  <data_root>/ImageNet-C/<corruption>/<severity>/<wnid>/*.JPEG (1000 wnid folders, 50 images each).

ImageNet images go through the papers' evaluation transforms (entrobench.data.images.PREPROCESSING,
checked against torchvision's): clean images Resize(256) + CenterCrop(224), ImageNet-C's (already
224 x 224) CenterCrop(224) only, as the authors' code (EATA, SAR, DeYO) reads them; float32
(3, 224, 224) in [0, 1]. The ImageNet mean/std normalization is not applied here: the models do
it in their forward (entrobench.models.zoo), so every set reaches a model as [0, 1] images. Only
the images asked for are decoded, but they are returned in memory: 50,000 of them take 30 GB as
float32. A TTA cell streams the released benchmarks instead (entrobench.data.images, batch by
batch, through `cifar10_c_block` and `imagenet_c_folder`); load_corrupted reads a few in memory.

A missing file raises DataUnavailable, whose message is the reason a table shows for the cell.
"""
from __future__ import annotations

import codecs
import gzip
import hashlib
import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

try:
    from numpy._core.multiarray import _reconstruct  # rebuilds the arrays inside CIFAR-10's pickles
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

from entrobench.data.corruption_types import CORRUPTIONS, SEVERITIES

if TYPE_CHECKING:
    from entrobench.data.images import ImageFolderIndex

DATA_ROOT_ENV = "ENTROBENCH_DATA_ROOT"
CLEAN_SETS = ("digits", "mnist", "cifar10", "imagenet_val")
CORRUPTED_SETS = ("cifar10_c", "imagenet_c")

# name: (train part, test part) of the fixed permutation split
_SPLIT_SIZES = {"digits": (1200, 597), "mnist": (6000, 4000)}
TRAIN_SHARE = 0.6  # a set split from one part gives it 60% to train, as MNIST's 6000/4000
MNIST_DIR = "mnist_test"
MNIST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
CIFAR10_DIR = "cifar-10-batches-py"
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_C_DIR = "CIFAR-10-C"
CIFAR10_C_PER_SEVERITY = 10_000
IMAGENET_VAL_DIR = Path("imagenet") / "val"
IMAGENET_C_DIR = "ImageNet-C"
IMAGENET_CLASSES = 1000  # wnid folders a tree must hold: labels are their sorted positions
IMAGENET_C_ORDER_SEED = 0  # load_corrupted("imagenet_c", n=...) takes the first n of this permutation
CROP = 224
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # ImageFolder's
_DECODE_THREADS = min(8, os.cpu_count() or 1)


class DataUnavailable(Exception):
    """The data a cell needs is not on this machine; the message says where it was looked for."""


@dataclass(frozen=True)
class CleanSplit:
    x_train: np.ndarray  # float32 (N, C, H, W) in [0, 1]
    y_train: np.ndarray  # int64 (N,)
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    fingerprint: str  # 16 hex of sha256 over the raw source (not the split); see each reader


def default_data_root() -> Path | None:
    """$ENTROBENCH_DATA_ROOT if set, else ../shared/data beside the repository if it exists, else None."""
    env = os.environ.get(DATA_ROOT_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    shared = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return shared if shared.is_dir() else None


def load_clean(name: str, data_root: Path | None, n_train: int | None, n_test: int | None, split_seed: int = 0) -> CleanSplit:
    """A fixed permutation split of a clean image set; n_train / n_test take the first images of
    each part (None: all of it). A set with its own training part (CIFAR-10 with its five
    training batches) keeps the official split and permutes each part."""
    if name == "imagenet_val":
        return _load_imagenet_val(data_root, n_train, n_test, split_seed)
    if name == "digits":
        images, labels, fingerprint = _read_digits()
    elif name == "mnist":
        images, labels, fingerprint = _read_mnist_test(data_root)
    elif name == "cifar10":
        parts, fingerprint = _read_cifar10(data_root)
        if len(parts) == 2:  # the official training set and test set
            (x_train, y_train), (x_test, y_test) = parts
            rng = np.random.default_rng(split_seed)
            train = rng.permutation(len(y_train))[: _count("n_train", n_train, len(y_train), name)]
            test = rng.permutation(len(y_test))[: _count("n_test", n_test, len(y_test), name)]
            return CleanSplit(_images(x_train[train]), y_train[train], _images(x_test[test]), y_test[test], 10, fingerprint)
        images, labels = parts[0]
    else:
        raise ValueError(f"unknown clean image set {name!r} (expected one of: {', '.join(CLEAN_SETS)})")
    train, test = _split(name, len(labels), n_train, n_test, split_seed)
    return CleanSplit(
        x_train=_images(images[train]),
        y_train=labels[train],
        x_test=_images(images[test]),
        y_test=labels[test],
        n_classes=10,
        fingerprint=fingerprint,
    )


def load_corrupted(
    name: str, data_root: Path | None, corruption: str, severity: int, n: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A released pre-corrupted benchmark: x float32 (n, 3, H, W) in [0, 1], y int64 (n,).

    - "cifar10_c": 32x32; n takes the first n images of that severity (None: all 10,000).
    - "imagenet_c": 224x224 after Resize(256) + CenterCrop(224); n takes the first n of a fixed
      seed-0 permutation of all the severity's images (the same images, in the same order, for
      every corruption and severity), so a subset spans many classes. None: all 50,000, 30 GB as
      float32. Only the n chosen images are decoded, in that order."""
    if name not in CORRUPTED_SETS:
        raise ValueError(f"unknown corrupted benchmark {name!r} (expected one of: {', '.join(CORRUPTED_SETS)})")
    if corruption not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {corruption!r} (expected one of: {', '.join(CORRUPTIONS)})")
    if isinstance(severity, bool) or severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(map(str, SEVERITIES))}, got {severity!r}")
    if name == "imagenet_c":
        return _load_imagenet_c(data_root, corruption, severity, n)
    images, labels = cifar10_c_block(data_root, corruption, severity)
    n = _count("n", n, len(images), name)
    x = np.asarray(images[:n]).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    return np.ascontiguousarray(x), np.asarray(labels[:n]).astype(np.int64)


def check_released(name: str, data_root: Path | None) -> None:
    """DataUnavailable (with the place looked at) unless a released benchmark's folder is there;
    a corruption or severity missing from it is found when a cell opens it."""
    if name not in CORRUPTED_SETS:
        raise ValueError(f"unknown corrupted benchmark {name!r} (expected one of: {', '.join(CORRUPTED_SETS)})")
    where = _require_root(data_root, name) / (IMAGENET_C_DIR if name == "imagenet_c" else f"{CIFAR10_C_DIR}/labels.npy")
    if not where.exists():
        raise DataUnavailable(f"{name} not found at {where} (see README: Data; `python -m entrobench stage <card> --scale full` fetches it)")


def cifar10_c_block(data_root: Path | None, corruption: str, severity: int) -> tuple[np.ndarray, np.ndarray]:
    """One severity of a CIFAR-10-C corruption, memory-mapped: uint8 (10,000, 32, 32, 3) and its
    labels; nothing is read until rows are asked for."""
    folder = _require_root(data_root, "CIFAR-10-C") / CIFAR10_C_DIR
    images_path, labels_path = folder / f"{corruption}.npy", folder / "labels.npy"
    for path in (images_path, labels_path):
        if not path.is_file():
            raise DataUnavailable(
                f"CIFAR-10-C not found at {path} (see README: Data; fetch it with "
                f"`python -m entrobench stage <card> --scale full` or `python -m entrobench.stage cifar10_c --data-root {data_root}`)"
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
    start = (severity - 1) * per_severity
    return images[start : start + per_severity], labels[start : start + per_severity]


def imagenet_c_folder(data_root: Path | None, corruption: str, severity: int) -> ImageFolderIndex:
    """The index of one ImageNet-C corruption and severity (ImageFolder's order, 1000 classes)."""
    folder = _require_root(data_root, "ImageNet-C") / IMAGENET_C_DIR / corruption / str(severity)
    if not folder.is_dir():
        raise DataUnavailable(
            f"ImageNet-C not found at {folder} (see README: Data; the release unpacks to "
            f"ImageNet-C/<corruption>/<severity>/<wnid>/*.JPEG)"
        )
    return _index(folder)


def _load_imagenet_c(data_root: Path | None, corruption: str, severity: int, n: int | None) -> tuple[np.ndarray, np.ndarray]:
    index = imagenet_c_folder(data_root, corruption, severity)
    n = _count("n", n, len(index), "imagenet_c")
    order = np.random.default_rng(IMAGENET_C_ORDER_SEED).permutation(len(index))[:n]
    return _read_imagenet_images([index.path(i) for i in order], "imagenet_c"), index.labels[order]


def _load_imagenet_val(data_root: Path | None, n_train: int | None, n_test: int | None, split_seed: int) -> CleanSplit:
    folder = _require_root(data_root, "ImageNet validation set") / IMAGENET_VAL_DIR
    if not folder.is_dir():
        raise DataUnavailable(
            f"ImageNet validation set not found at {folder} (see README: Data; expected one folder "
            f"per wnid, {folder}/<wnid>/*.JPEG, as torchvision's ImageFolder reads it)"
        )
    index = _index(folder)
    train, test = _split("imagenet_val", len(index), n_train, n_test, split_seed)
    return CleanSplit(
        x_train=_read_imagenet_images([index.path(i) for i in train], "imagenet_val"),
        y_train=index.labels[train],
        x_test=_read_imagenet_images([index.path(i) for i in test], "imagenet_val"),
        y_test=index.labels[test],
        n_classes=IMAGENET_CLASSES,
        fingerprint=index.fingerprint,
    )


def _split(name: str, total: int, n_train: int | None, n_test: int | None, split_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the train and test parts of a fixed permutation of `total` images, capped."""
    if name in _SPLIT_SIZES:
        size_train, size_test = _SPLIT_SIZES[name]
    else:
        size_train = round(TRAIN_SHARE * total)
        size_test = total - size_train
    n_train = _count("n_train", n_train, size_train, name)
    n_test = _count("n_test", n_test, size_test, name)
    order = np.random.default_rng(split_seed).permutation(total)
    return order[:size_train][:n_train], order[size_train:][:n_test]


def _images(x: np.ndarray) -> np.ndarray:
    """uint8 or float images -> contiguous float32 in [0, 1]."""
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    return np.ascontiguousarray(x)


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


def _read_cifar10(data_root: Path | None) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """[(train images, labels), (test images, labels)] with all five training batches, else
    [(test images, labels)]; images uint8 (N, 3, 32, 32). Fingerprint: sha256 over the pixel
    bytes and labels of the batches read, in order."""
    folder = _require_root(data_root, "CIFAR-10") / CIFAR10_DIR
    test_path = folder / "test_batch"
    if not test_path.is_file():
        raise DataUnavailable(
            f"CIFAR-10 not found at {test_path} (see README: Data; the python release "
            f"cifar-10-python.tar.gz unpacks to {CIFAR10_DIR}/)"
        )
    present = [b for b in CIFAR10_TRAIN_BATCHES if (folder / b).is_file()]
    if present and len(present) < len(CIFAR10_TRAIN_BATCHES):
        missing = [b for b in CIFAR10_TRAIN_BATCHES if b not in present]
        raise ValueError(
            f"{folder}: has {', '.join(present)} but not {', '.join(missing)}: an incomplete copy? "
            f"Restore them, or remove all five to split test_batch instead"
        )
    h = hashlib.sha256()
    batches = [_read_cifar10_batch(folder / b, h) for b in present]
    test = _read_cifar10_batch(test_path, h)
    parts = [tuple(np.concatenate(a) for a in zip(*batches)), test] if batches else [test]
    return parts, h.hexdigest()[:16]


def _read_cifar10_batch(path: Path, digest) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = CifarUnpickler(f, encoding="bytes").load()
        data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as err:
        raise ValueError(f"{path}: not a CIFAR-10 python batch ({type(err).__name__}: {err})") from err
    # each row: 1024 red, 1024 green, 1024 blue values, rows of 32 pixels
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or labels.shape != data.shape[:1]:
        raise ValueError(
            f"{path}: expected uint8 (N, 3072) data with N labels, got {data.dtype} {data.shape} and {labels.shape}"
        )
    if labels.size and not (labels.min() >= 0 and labels.max() <= 9):
        raise ValueError(f"{path}: labels must be 0..9, got {labels.min()}..{labels.max()}")
    digest.update(data.tobytes())
    digest.update(labels.astype(np.int64).tobytes())
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


class CifarUnpickler(pickle.Unpickler):
    """The CIFAR-10 release is a pickle (Python 2, protocol 2). Only what its batches hold may be
    rebuilt (dicts, lists, bytes, numpy arrays), so a tampered file cannot run code."""

    _GLOBALS = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,  # as the release names it
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # as numpy >= 2 writes it
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,  # bytes re-pickled by Python 3 at protocol 2
    }

    def find_class(self, module: str, name: str):
        try:
            return self._GLOBALS[module, name]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}") from None


def _index(folder: Path) -> ImageFolderIndex:
    """ImageFolder's order (wnid folders sorted, label = position; files sorted within each), with
    all 1000 classes: a partial copy would shift every label after a missing class."""
    from entrobench.data.images import index_image_folder  # torch's DataLoader: not for the DAG's planning

    if not any(e.is_dir() and not e.name.startswith(".") for e in os.scandir(folder)):
        raise DataUnavailable(f"no class folders in {folder} (see README: Data; expected <wnid>/*.JPEG)")
    return index_image_folder(folder, expect_classes=IMAGENET_CLASSES)


def _read_imagenet_images(paths: list[Path], preprocessing: str) -> np.ndarray:
    """float32 (len(paths), 3, 224, 224) in [0, 1], decoded on threads (Pillow releases the GIL
    while it decodes and resizes); the order is that of `paths`."""
    out = np.empty((len(paths), 3, CROP, CROP), dtype=np.float32)

    def read(i: int) -> None:
        out[i] = _decode(paths[i], preprocessing)

    with ThreadPoolExecutor(max_workers=_DECODE_THREADS) as pool:
        list(pool.map(read, range(len(paths))))  # list(): re-raises a worker's error here
    return out


def _decode(path: Path, preprocessing: str) -> np.ndarray:
    """torchvision's ImageFolder loader + the preprocessing + ToTensor: (3, 224, 224) / 255."""
    from PIL import Image, UnidentifiedImageError

    from entrobench.data.images import PREPROCESSING

    try:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path}: not a readable image ({err})") from err
    return PREPROCESSING[preprocessing](rgb).astype(np.float32) / 255.0


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
