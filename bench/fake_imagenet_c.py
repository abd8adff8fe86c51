"""A fake ImageNet-C tree of real JPEG files, for the memory and GPU benchmarks:
<root>/ImageNet-C/<corruption>/<severity>/<wnid>/*.JPEG, `n_images` spread over `classes` folders
(1000 by default, so that sources.load_corrupted reads it too), 224 x 224 like the release.

Each image is a smooth random colour field plus per-pixel noise, so the JPEGs are of the
release's size (tens of kB) and decode at its cost. Written once; a tree already holding the
asked number of images is reused.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = 1000
SIDE = 224


def write_fake_imagenet_c(
    root: Path, n_images: int, corruption: str = "gaussian_noise", severity: int = 5, seed: int = 0, processes: int = 1,
    classes: int = CLASSES,
) -> Path:
    """Returns the severity folder (the ImageFolder root of the stream). Image i is seeded by
    (seed, i), so the tree is the same whatever `processes` writes it."""
    folder = Path(root) / "ImageNet-C" / corruption / str(severity)
    done = folder / f".complete-{n_images}-{classes}"
    if done.is_file():
        return folder
    if n_images < classes:
        raise ValueError(f"asked for {n_images} images, fewer than the {classes} class folders each needs one")
    for c in range(classes):
        (folder / f"n{c:08d}").mkdir(parents=True, exist_ok=True)
    jobs = [(folder, seed, start, n_images, processes, classes) for start in range(processes)]
    if processes > 1:
        from multiprocessing import Pool

        with Pool(processes) as pool:
            pool.map(_write_some, jobs)
    else:
        _write_some(jobs[0])
    done.write_text("")
    return folder


def _write_some(job) -> None:
    """Images start, start + step, ... below n_images; image i goes to class i % classes."""
    from PIL import Image

    folder, seed, start, n_images, step, classes = job
    yy, xx = np.mgrid[0:SIDE, 0:SIDE] / SIDE
    for i in range(start, n_images, step):
        rng = np.random.default_rng([seed, i])
        a = rng.uniform(0, 255, (3, 3))  # a colour gradient per channel
        field = a[:, 0, None, None] + a[:, 1, None, None] * xx + a[:, 2, None, None] * yy
        pixels = field.transpose(1, 2, 0) * 0.5 + rng.normal(0, 25, (SIDE, SIDE, 3))
        path = folder / f"n{i % classes:08d}" / f"ILSVRC2012_val_{i:08d}.JPEG"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=85)
