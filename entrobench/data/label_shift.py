"""Online label shift as SAR's code generates it (Niu et al., ICLR 2023, Section 4.3), which DeYO
(Lee et al., ICLR 2024) reuses: `label_shift_indices(labels, imbalance_ratio, seed)`.

Reference: github.com/mr-eggplant/SAR, dataset/generate_shifted_sample_indices.py (the same file
in github.com/Jhyun17/DeYO), after "Online adaptation to label distribution shifts" (NeurIPS 2021).

The stream has `total` samples in C equal blocks, one per class. Every label of block t is drawn
from q_t, which gives the block's major class the probability ir / (ir + C - 1) and every other
class 1 / (ir + C - 1) (ir = the imbalance ratio: 1 is uniform, 500,000 almost a pure class
order). The blocks' major classes follow a shuffled class order. Each label then picks one image
of its class, uniformly and with replacement, so images repeat and some never come. On ImageNet
(C = 1000, 50,000 images) the authors take total = 100,000: blocks of 100 samples.

The random draws are the script's, so its released index files come out bit for bit (checked
against seed2022_total_100000_ir_500000, seed2023_total_100000_ir_1000 and, in DeYO's copy,
seed2024_total_100000_ir_500000 and seed2025_total_100000_ir_1; the unprefixed files that the
code loads for its default seed 2021 were made from a state the script does not show, and are
not reproduced):
- class order: Python's `random`, seeded with the file's seed. The script shuffles a fresh
  list(range(C)) once per ratio of its loop [1, 1000, 2000, 3000, 4000, 5000, 500,000], from
  one stream, so the order of the k-th ratio is the (k+1)-th shuffle (`class_order_draw`);
- labels and images: numpy's legacy RandomState(2022) whatever the seed: one uniform per sample
  against q_t's cumulative sum (np.random.choice with p), then, class by class in label order,
  randint(0, images of the class, labels drawn for it).
"""
from __future__ import annotations

import random

import numpy as np

AUTHORS_RATIOS = (1, 1000, 2000, 3000, 4000, 5000, 500_000)  # the script's loop, in its order
SAMPLE_SEED = 2022  # np.random.seed(2022) inside the script's sampler, for every file
IMAGENET_TOTAL = 100_000  # the authors' stream length on ImageNet-C (2 x 50,000)


def label_shift_indices(
    labels: np.ndarray,
    imbalance_ratio: float,
    seed: int,
    total: int | None = None,
    *,
    n_classes: int | None = None,
    class_order_draw: int | None = None,
    shuffle_classes: bool = True,
    sample_seed: int = SAMPLE_SEED,
) -> np.ndarray:
    """Indices into `labels` (int64, (total // C * C,)): the test stream under online label shift.

    labels: the class of each image, in the dataset's order (ImageFolder's, as the authors index it).
    imbalance_ratio: the major class's probability over a minor one's, >= 1.
    seed: the class order's seed (the number in the authors' file names).
    total: samples in the stream (default: 2 x the images, the authors' 100,000 on ImageNet).
    n_classes: C (default: the largest label + 1).
    class_order_draw: which shuffle of the seeded stream gives the order (default: the ratio's
        position in AUTHORS_RATIOS, else 0: what the authors' files hold).
    shuffle_classes: False keeps the classes in label order (the script's "shuffle: no").
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or (labels.size and labels.min() < 0):
        raise ValueError(f"labels must be a 1-D array of non-negative integers, got {labels.dtype} {labels.shape}")
    if not imbalance_ratio >= 1:
        raise ValueError(f"imbalance_ratio must be >= 1 (1: uniform labels), got {imbalance_ratio!r}")
    n_classes = int(labels.max()) + 1 if n_classes is None else n_classes
    total = 2 * len(labels) if total is None else total
    if total < n_classes:
        raise ValueError(f"total must be at least the number of classes ({n_classes}) for one block each, got {total}")
    per_block = total // n_classes  # the script drops the remainder

    order = _class_order(n_classes, seed, imbalance_ratio, class_order_draw, shuffle_classes)
    draws = np.random.RandomState(sample_seed)
    uniform = draws.random_sample(n_classes * per_block).reshape(n_classes, per_block)
    minor = 1.0 / (imbalance_ratio + n_classes - 1)
    major = minor * imbalance_ratio
    ys = np.empty((n_classes, per_block), dtype=np.int64)
    for block, major_class in enumerate(order):
        q = np.full(n_classes, minor)  # the script's np.ones * minor, then the diagonal
        q[major_class] = major
        cdf = q.cumsum()
        cdf /= cdf[-1]  # as np.random.choice(C, 1, p=q) normalizes, then searches its uniform
        ys[block] = cdf.searchsorted(uniform[block], side="right")
    ys = ys.reshape(-1)

    indices = np.empty(len(ys), dtype=np.int64)
    for c in range(n_classes):
        wanted = ys == c
        count = int(wanted.sum())
        if not count:
            continue
        pool = np.flatnonzero(labels == c)
        if not len(pool):
            raise ValueError(f"the label-shift stream draws class {c}, which has no image in labels")
        indices[wanted] = pool[draws.randint(0, len(pool), count)]
    return indices


def _class_order(n_classes: int, seed: int, ratio: float, draw: int | None, shuffle: bool) -> list[int]:
    if not shuffle:
        return list(range(n_classes))
    if draw is None:
        draw = AUTHORS_RATIOS.index(ratio) if ratio in AUTHORS_RATIOS else 0
    stream = random.Random(seed)
    for _ in range(draw + 1):
        order = list(range(n_classes))
        stream.shuffle(order)
    return order
