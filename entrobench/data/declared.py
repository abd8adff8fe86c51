"""Image-classification datasets declared as data (configs/_datasets/<name>.yaml), read by one
reader per file format; no code per dataset.

    # configs/_datasets/digits16.yaml
    family: tta
    format: h5                 # npz, npy, h5, idx (gzipped or not), image_folder
    root: /data/mine           # absolute, or relative to the data root; empty: the data root
    path: digits16.h5          # npz and h5: the file holding the arrays
    images: x                  # npz/h5: array name; npy/idx: file; image_folder: folder
    labels: y
    n_classes: 10              # 0: max label + 1
    channels: 1
    image_size: 16             # checked against what is stored
    layout: nhwc               # or nchw; (N, H, W) arrays are one channel
    pixel_max: 255             # stored value of white; images become float32 in [0, 1]
    test_fraction: 0.4         # a random split seeded by split_seed, unless test_images/test_labels name its own

The result is the same `CleanSplit` the built-in sets give (entrobench.data.sources), so
everything downstream (corruptions, source model, cells) is shared.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from entrobench.data.sources import IMAGE_SUFFIXES, CleanSplit, DataUnavailable, _count, _gunzip, _parse_idx


def load_declared(dataset, data_root: Path | None, n_train: int | None, n_test: int | None) -> CleanSplit:
    """The dataset's train and test parts (capped at n_train / n_test), float32 (N, C, H, W) in [0, 1]."""
    root = _root(dataset, data_root)
    digest = hashlib.sha256()
    x, y = _read(dataset, root, dataset.images, dataset.labels, digest)
    if dataset.test_images:  # the dataset's own split: each part in a seeded order
        x_test, y_test = _read(dataset, root, dataset.test_images, dataset.test_labels, digest)
        rng = np.random.default_rng(dataset.split_seed)
        train = rng.permutation(len(y))[: _count("n_train", n_train, len(y), dataset.images)]
        test = rng.permutation(len(y_test))[: _count("n_test", n_test, len(y_test), dataset.test_images)]
        parts = (x[train], y[train], x_test[test], y_test[test])
    else:  # a stated random split: the first (1 - test_fraction) of a seeded permutation trains
        order = np.random.default_rng(dataset.split_seed).permutation(len(y))
        size_train = len(y) - round(dataset.test_fraction * len(y))
        train = order[:size_train][: _count("n_train", n_train, size_train, dataset.images)]
        test = order[size_train:][: _count("n_test", n_test, len(y) - size_train, dataset.images)]
        parts = (x[train], y[train], x[test], y[test])
    labels = np.concatenate([y] if not dataset.test_images else [y, y_test])
    n_classes = dataset.n_classes or int(labels.max()) + 1
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"{root}: labels must be 0..{n_classes - 1} (n_classes {n_classes}), got {labels.min()}..{labels.max()}")
    x_train, y_train, x_test, y_test = parts
    scale = np.float32(1.0 / dataset.pixel_max)
    return CleanSplit(
        x_train=np.ascontiguousarray(x_train.astype(np.float32) * scale),
        y_train=y_train,
        x_test=np.ascontiguousarray(x_test.astype(np.float32) * scale),
        y_test=y_test,
        n_classes=n_classes,
        fingerprint=digest.hexdigest()[:16],
    )


def _root(dataset, data_root: Path | None) -> Path:
    if dataset.root and Path(dataset.root).is_absolute():
        return Path(dataset.root)
    if data_root is None:
        raise DataUnavailable(f"dataset under the data root ({dataset.root or '.'}) needs a data root: none set (see README: Data)")
    return Path(data_root) / dataset.root


def _read(dataset, root: Path, images: str, labels: str, digest) -> tuple[np.ndarray, np.ndarray]:
    x, y = READERS[dataset.format](dataset, root, images, labels)
    x, y = np.asarray(x), np.asarray(y).reshape(-1).astype(np.int64)
    digest.update(x.tobytes())
    digest.update(y.tobytes())
    x = _to_nchw(x, dataset, root / (dataset.path or images))
    if len(x) != len(y):
        raise ValueError(f"{root / (dataset.path or images)}: {len(x)} images but {len(y)} labels")
    return x, y


def _to_nchw(x: np.ndarray, dataset, where: Path) -> np.ndarray:
    if x.ndim == 3:  # (N, H, W): grayscale
        x = x[:, None]
    elif x.ndim == 4 and dataset.layout == "nhwc":
        x = x.transpose(0, 3, 1, 2)
    elif x.ndim != 4:
        raise ValueError(f"{where}: expected images (N, H, W) or (N, H, W, C) / (N, C, H, W), got shape {x.shape}")
    channels, height, width = x.shape[1:]
    if dataset.channels and channels != dataset.channels:
        raise ValueError(f"{where}: the dataset declares {dataset.channels} channels, the images have {channels} (layout {dataset.layout})")
    if dataset.image_size and (height, width) != (dataset.image_size, dataset.image_size):
        raise ValueError(f"{where}: the dataset declares {dataset.image_size}x{dataset.image_size} images, found {height}x{width}")
    return x


def _file(root: Path, name: str) -> Path:
    path = root / name
    if not path.is_file():
        raise DataUnavailable(f"dataset file not found at {path}")
    return path


def _npz(dataset, root, images, labels):
    with np.load(_file(root, dataset.path), allow_pickle=False) as npz:
        return _arrays(npz, list(npz.files), root / dataset.path, images, labels)


def _npy(dataset, root, images, labels):
    return np.load(_file(root, images), allow_pickle=False), np.load(_file(root, labels), allow_pickle=False)


def _h5(dataset, root, images, labels):
    import h5py

    with h5py.File(_file(root, dataset.path), "r") as f:
        return _arrays(f, list(f.keys()), root / dataset.path, images, labels)


def _arrays(store, names: list[str], where: Path, images: str, labels: str):
    for name in (images, labels):
        if name not in names:
            raise ValueError(f"{where}: no array {name!r} (it holds: {', '.join(names)})")
    return np.asarray(store[images][...]), np.asarray(store[labels][...])


def _idx(dataset, root, images, labels):
    def read(name: str) -> np.ndarray:
        path = _file(root, name)
        raw = _gunzip(path) if path.suffix == ".gz" else path.read_bytes()
        dims = raw[3] if len(raw) > 3 else 0
        return _parse_idx(raw, path, magic=0x800 | dims, dims=dims)

    return read(images), read(labels)


def _image_folder(dataset, root, images, labels):
    """ImageFolder's layout: one folder per class (label = sorted position), images inside."""
    from PIL import Image

    folder = root / images
    if not folder.is_dir():
        raise DataUnavailable(f"image folder not found at {folder}")
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    mode = "L" if dataset.channels == 1 else "RGB"
    pixels, targets = [], []
    for label, class_dir in enumerate(classes):
        for path in sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            with Image.open(path) as img:
                pixels.append(np.asarray(img.convert(mode)))
            targets.append(label)
    if not pixels:
        raise ValueError(f"{folder}: no images in class folders ({', '.join(IMAGE_SUFFIXES)})")
    if len({p.shape for p in pixels}) > 1:
        raise ValueError(f"{folder}: images differ in size; declared image folders must hold one size")
    return np.stack(pixels), np.asarray(targets)


READERS = {"npz": _npz, "npy": _npy, "h5": _h5, "idx": _idx, "image_folder": _image_folder}
