"""SAR's online label-shift stream, generated as the authors' script generates it."""
import hashlib

import numpy as np
import pytest

from entrobench.data.label_shift import IMAGENET_TOTAL, label_shift_indices

IMAGENET_LABELS = np.repeat(np.arange(1000), 50)  # ImageFolder's order of the 50,000 val / ImageNet-C images


# (seed, ratio): sha256 (first 16 hex) of the authors' released index file as int64, and its first
# six indices. Files: mr-eggplant/SAR dataset/seed2022_total_100000_ir_500000_class_order_shuffle_yes.npy,
# seed2023_..._ir_1000_...; Jhyun17/DeYO dataset/seed2024_..._ir_500000_..., seed2025_..._ir_1_...
AUTHORS_FILES = {
    (2022, 500_000): ("659082b354831f34", [24635, 24638, 24636, 24636, 24606, 24623]),
    (2023, 1000): ("7bd5364eed293628", [912, 3016, 3044, 3039, 18565, 3019]),
    (2024, 500_000): ("bbe0c5ac2a3cdf35", [13296, 13297, 13284, 13294, 13274, 13264]),
    (2025, 1): ("47a58ef1a05e1e09", [473, 24977, 5662, 2450, 34262, 24335]),
}


@pytest.mark.parametrize("seed, ratio", sorted(AUTHORS_FILES))
def test_reproduces_the_authors_released_index_files_bit_for_bit(seed, ratio):
    digest, head = AUTHORS_FILES[seed, ratio]
    indices = label_shift_indices(IMAGENET_LABELS, ratio, seed, IMAGENET_TOTAL)
    assert indices.dtype == np.int64 and indices.shape == (100_000,)
    assert indices[:6].tolist() == head
    assert hashlib.sha256(indices.tobytes()).hexdigest()[:16] == digest


def test_pure_class_order_gives_one_class_per_block_in_a_shuffled_order():
    indices = label_shift_indices(IMAGENET_LABELS, 500_000, 2022, IMAGENET_TOTAL)
    blocks = IMAGENET_LABELS[indices].reshape(1000, 100)
    majors = np.array([np.bincount(b, minlength=1000).argmax() for b in blocks])
    assert sorted(majors.tolist()) == list(range(1000))  # every class leads one block
    assert not np.array_equal(majors, np.arange(1000))  # in a shuffled order
    # P(major) = 500000 / 500999 = 0.998: about 200 of the 100,000 labels are minor
    assert 100 < (blocks != majors[:, None]).sum() < 320


def test_small_stream_matches_a_hand_count():
    labels = np.array([0, 0, 1, 1, 1, 2])  # any order: images are picked by label
    indices = label_shift_indices(labels, 1e9, seed=0, total=12, shuffle_classes=False)
    assert indices.shape == (12,)
    assert labels[indices].tolist() == [0] * 4 + [1] * 4 + [2] * 4  # ratio 1e9: only major classes
    assert set(indices[:4]) <= {0, 1} and set(indices[4:8]) <= {2, 3, 4} and set(indices[8:]) == {5}


def test_uniform_ratio_spreads_labels_and_the_seed_only_moves_the_class_order():
    labels = np.repeat(np.arange(10), 20)
    a = label_shift_indices(labels, 1, seed=1, total=2000)
    counts = np.bincount(labels[a], minlength=10)
    assert counts.min() > 150 and counts.max() < 250  # 200 expected per class
    # ratio 1: every q_t is uniform, so the class order (the seed) changes nothing
    assert np.array_equal(a, label_shift_indices(labels, 1, seed=2, total=2000))
    assert not np.array_equal(label_shift_indices(labels, 1000, 1, 2000), label_shift_indices(labels, 1000, 2, 2000))


@pytest.mark.parametrize("labels, ratio, total, match", [
    (np.array([0, 1, 2]), 0.5, 6, r"imbalance_ratio must be >= 1 \(1: uniform labels\), got 0.5"),
    (np.array([0, 1, 2]), 10, 2, r"total must be at least the number of classes \(3\) for one block each, got 2"),
    (np.array([0.0, 1.0]), 10, 4, r"labels must be a 1-D array of non-negative integers, got float64 \(2,\)"),
])
def test_bad_input_is_one_clear_line(labels, ratio, total, match):
    with pytest.raises(ValueError, match=match):
        label_shift_indices(labels, ratio, 0, total)


def test_a_class_without_images_is_named():
    with pytest.raises(ValueError, match="draws class 1, which has no image in labels"):
        label_shift_indices(np.array([0, 0, 2]), 1, 0, total=30)
