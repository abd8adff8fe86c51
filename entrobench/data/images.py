"""Streaming image data: a test stream read batch by batch, decoded in DataLoader workers.

    index = index_image_folder(root / "ImageNet-C" / "fog" / "5", expect_classes=1000)
    images = EncodedImages(index, PREPROCESSING["imagenet_c"])
    order = stream_order(len(index), seed=0, domain=3, n=50_000, subset_seed=0)
    for x, y in stream_batches(images, order, batch_size=64, workers=workers_for(cpus), device=device):
        ...  # x float32 (B, 3, 224, 224) in [0, 1] on `device`, y int64 numpy (B,)

Images stay encoded (JPEG files on disk, or a memory-mapped uint8 array) until a batch needs
them. Workers decode and preprocess one image per `__getitem__` and hand back uint8 tensors
(a quarter of float32's size through the worker queue, and to the GPU); the float conversion
runs on the device. Peak memory is the model's plus about workers x prefetch (2) x one uint8
batch (9.6 MB at 64 x 224 x 224 x 3), plus each worker's interpreter: it does not grow with the
number of images (bench/tta_memory.py measures it at 1k and 10k images). The index is numpy
arrays, not lists of Python strings, so forked workers do not copy it page by page as they read.

Preprocessing, as each paper's code does it (EATA, SAR and DeYO: dataset/selectedRotateImageFolder.py):
- "imagenet_c": CenterCrop(224) only (`te_transforms_imageC`): ImageNet-C's JPEGs are already
  224 x 224, so nothing is resized;
- "imagenet_val": Resize(256) + CenterCrop(224) (`te_transforms`, clean ImageNet: EATA's Fisher);
- "none": the image as stored (CIFAR-10-C's 32 x 32 arrays, `ArrayImages`).
Each is torchvision's PIL path re-stated with Pillow: ImageFolder's loader (`convert("RGB")`),
Resize(int) = bilinear on the short side to `resize`, the long side truncated, int(resize *
long / short) (Pillow filters over the whole footprint when it shrinks, which is what torchvision's
antialias=True means for PIL images); CenterCrop = offsets int(round((side - crop) / 2)), or
zero padding split (crop - side) // 2 before, the rest after, when the image is smaller;
ToTensor's / 255 happens in `stream_batches`. The ImageNet mean/std normalization lives in the
models (entrobench.models.zoo), as for every other data set here. tests/data/test_streaming.py
checks all of it against torchvision's transforms on the same JPEG files.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from entrobench.data.sources import IMAGE_SUFFIXES  # ImageFolder's
PREFETCH_BATCHES = 2  # per worker: DataLoader's default, the bound on decoded batches in flight


@dataclass(frozen=True)
class Preprocess:
    """torchvision's Resize(resize) if set, then CenterCrop(crop) if set, on an RGB PIL image;
    returns uint8 (3, H, W), ToTensor's layout before its / 255."""

    resize: int | None = None
    crop: int | None = None

    def __call__(self, image) -> np.ndarray:
        from PIL import Image

        if self.resize is not None:
            image = image.resize(resize_size(*image.size, self.resize), Image.Resampling.BILINEAR)
        if self.crop is not None:
            left, top = crop_offsets(*image.size, self.crop)
            image = image.crop((left, top, left + self.crop, top + self.crop))  # zero fill outside, as torchvision pads
        return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)


PREPROCESSING = {
    "imagenet_c": Preprocess(crop=224),
    "imagenet_val": Preprocess(resize=256, crop=224),
    "none": Preprocess(),
}


def resize_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) after torchvision's Resize(size): the short side to `size`, the long side
    int(size * long / short), truncated."""
    if width <= height:
        return size, int(size * height / width)
    return int(size * width / height), size


def crop_offsets(width: int, height: int, crop: int) -> tuple[int, int]:
    """(left, top) of torchvision's CenterCrop(crop): int(round((side - crop) / 2)) (half to even);
    negative where the image is smaller, by the (crop - side) // 2 that torchvision pads before it."""

    def offset(side: int) -> int:
        return -((crop - side) // 2) if crop > side else round((side - crop) / 2.0)

    return offset(width), offset(height)


# --- what a stream reads -------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageFolderIndex:
    """An ImageFolder tree, listed once: class folders sorted (label = position), files sorted in each."""

    root: Path
    classes: tuple[str, ...]
    files: np.ndarray  # bytes (N,): "<class>/<file name>", relative to root
    labels: np.ndarray  # int64 (N,)
    fingerprint: str  # 16 hex of sha256 over relative paths and byte sizes (hashing 6 GB of JPEGs takes minutes)

    def __len__(self) -> int:
        return len(self.labels)

    def path(self, i: int) -> Path:
        return self.root / os.fsdecode(self.files[i])


def index_image_folder(root: Path, expect_classes: int | None = None) -> ImageFolderIndex:
    """List `root`/<class>/<image> as torchvision's ImageFolder does. `expect_classes`: refuse a
    tree with another number of class folders (a partial copy would shift every later label)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder (expected <class>/<image> files, as ImageFolder reads them)")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if expect_classes is not None and len(classes) != expect_classes:
        raise ValueError(
            f"{root}: expected {expect_classes} class folders, found {len(classes)}; "
            f"a partial copy would shift every label after a missing class"
        )
    files, labels, digest = [], [], hashlib.sha256()
    for label, name in enumerate(classes):
        entries = sorted(
            (e for e in os.scandir(root / name) if e.is_file() and e.name.lower().endswith(IMAGE_SUFFIXES)),
            key=lambda e: e.name,
        )
        if not entries:
            raise ValueError(f"{root / name}: no images in this class folder")
        for e in entries:
            files.append(os.fsencode(f"{name}/{e.name}"))
            digest.update(f"{name}/{e.name}:{e.stat().st_size}\n".encode())
        labels += [label] * len(entries)
    if not files:
        raise ValueError(f"{root}: no class folders (expected <class>/<image> files)")
    return ImageFolderIndex(root, tuple(classes), np.array(files), np.array(labels, dtype=np.int64), digest.hexdigest()[:16])


class EncodedImages(Dataset):
    """The images of an index, each decoded and preprocessed when asked for: (uint8 (3, H, W), label)."""

    def __init__(self, index: ImageFolderIndex, preprocess: Preprocess):
        self.index, self.preprocess = index, preprocess

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image, UnidentifiedImageError

        path = self.index.path(i)
        try:
            with Image.open(path) as img:
                rgb = img.convert("RGB")
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"{path}: not a readable image ({err})") from err
        return torch.from_numpy(np.ascontiguousarray(self.preprocess(rgb))), int(self.index.labels[i])


class ArrayImages(Dataset):
    """Images already decoded on disk, uint8 (N, H, W, C) (CIFAR-10-C's .npy, memory-mapped):
    only the rows a batch asks for are read."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        if images.ndim != 4 or images.dtype != np.uint8 or len(labels) != len(images):
            raise ValueError(f"expected uint8 (N, H, W, C) images with N labels, got {images.dtype} {images.shape} and {np.shape(labels)}")
        self.images, self.labels = images, np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.from_numpy(np.ascontiguousarray(self.images[i].transpose(2, 0, 1))), int(self.labels[i])


# --- the stream ------------------------------------------------------------------------------------


def stream_order(
    n_images: int,
    seed: int,
    domain: int,
    n: int | None = None,
    max_samples: int | None = None,
    subset_seed: int | None = None,
    labels: np.ndarray | None = None,
    label_order: str = "shuffled",
) -> np.ndarray:
    """Indices of the images a domain streams, in stream order, as the TTA protocol has drawn them
    (protocols/tta/run.py: `_stream` over `sources.load_corrupted`):
    1. the set: the first n images (subset_seed None: CIFAR-10-C), or the first n of a fixed
       permutation seeded by subset_seed (ImageNet-C: 0), the same for every domain;
    2. the stream: a permutation of that set seeded by (seed, domain, 1), cut at max_samples;
    3. label_order "sorted": stably sorted by `labels` (classes one after another).
    """
    n = n_images if n is None else min(n, n_images)
    subset = np.arange(n) if subset_seed is None else np.random.default_rng(subset_seed).permutation(n_images)[:n]
    order = subset[np.random.default_rng([seed, domain, 1]).permutation(n)[: max_samples or None]]
    if label_order == "sorted":
        if labels is None:
            raise ValueError("label_order 'sorted' needs the labels")
        order = order[np.argsort(np.asarray(labels)[order], kind="stable")]
    elif label_order != "shuffled":
        raise ValueError(f"label_order must be 'shuffled' or 'sorted', got {label_order!r}")
    return order


def workers_for(cpus: int) -> int:
    """Decoding workers for a job with `cpus` CPUs: one CPU stays with the process that feeds the
    model; a 1-CPU job decodes in that process."""
    return max(int(cpus) - 1, 0)


def stream_batches(
    dataset: Dataset, order: np.ndarray, batch_size: int, workers: int, device: torch.device | str = "cpu"
) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
    """(x float32 (B, C, H, W) in [0, 1] on `device`, y int64 (B,)) for the images `order` names,
    in that order, `batch_size` at a time (the last batch may be smaller). `workers` processes
    decode ahead of the model (0: this process decodes, batch by batch)."""
    device = torch.device(device)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=np.asarray(order, dtype=np.int64),
        num_workers=workers,
        prefetch_factor=PREFETCH_BATCHES if workers else None,
        pin_memory=device.type == "cuda",
    )
    for images, labels in loader:
        x = images.to(device, non_blocking=True).float().div_(255)  # ToTensor's scaling, on the device
        yield x, labels.numpy()
