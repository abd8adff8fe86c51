"""Clean image sets behind the data root, and the reader of the released CIFAR-10-C arrays."""
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from entrobench.data import sources
from entrobench.data.sources import DataUnavailable, default_data_root, load_clean, load_corrupted

MNIST_TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # the official test set


def _mnist_root() -> Path:
    root = default_data_root()
    if root is None or not (root / sources.MNIST_DIR / sources.MNIST_FILES[0]).is_file():
        pytest.skip(f"MNIST test set not under the data root ({root}); set ENTROBENCH_DATA_ROOT to run this")
    return root


def test_digits_split_is_1200_597_upsampled_to_32px_in_unit_range():
    split = load_clean("digits", None, None, None)
    assert split.x_train.shape == (1200, 1, 32, 32) and split.x_test.shape == (597, 1, 32, 32)
    assert split.x_train.dtype == np.float32 and split.y_train.dtype == np.int64
    assert split.y_test.shape == (597,) and split.n_classes == 10
    for x in (split.x_train, split.x_test):
        assert x.min() == 0.0 and x.max() <= 1.0 and x.max() > 0.99
    all_labels = np.concatenate([split.y_train, split.y_test])
    np.testing.assert_array_equal(np.bincount(all_labels), np.bincount(load_digits().target))
    assert len(split.fingerprint) == 16 and int(split.fingerprint, 16) >= 0


def test_digits_upsampling_is_bilinear_with_half_pixel_centres():
    import torch
    import torch.nn.functional as F

    raw = load_digits().images / 16.0
    ref = F.interpolate(torch.tensor(raw[:, None]), size=(32, 32), mode="bilinear", align_corners=False).numpy()
    split = load_clean("digits", None, None, None)
    order = np.random.default_rng(0).permutation(len(raw))
    np.testing.assert_allclose(split.x_train, ref[order[:1200]], atol=1e-6)


def test_digits_split_is_deterministic_and_capped():
    a, b = load_clean("digits", None, 100, 50), load_clean("digits", None, 100, 50)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert a.x_train.shape[0] == 100 and a.x_test.shape[0] == 50
    full = load_clean("digits", None, None, None)
    np.testing.assert_array_equal(a.x_train, full.x_train[:100])  # a cap takes the first images
    np.testing.assert_array_equal(a.x_test, full.x_test[:50])
    other = load_clean("digits", None, 100, 50, split_seed=1)
    assert not np.array_equal(other.y_train, a.y_train)
    assert other.fingerprint == a.fingerprint  # the source is the same, only the split moved


def test_a_count_above_the_split_size_is_a_cap_and_a_negative_one_raises():
    assert len(load_clean("digits", None, None, 4000).x_test) == 597  # one protocol, sets of different sizes
    with pytest.raises(ValueError, match=r"n_train must be a non-negative integer or None, got -1"):
        load_clean("digits", None, -1, None)


def test_unknown_clean_set_raises_listing_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown clean image set 'cifar10' \(expected one of: digits, mnist\)"):
        load_clean("cifar10", None, None, None)


def test_mnist_loads_from_the_data_root_with_the_official_label_counts():
    split = load_clean("mnist", _mnist_root(), None, None)
    assert split.x_train.shape == (6000, 1, 28, 28) and split.x_test.shape == (4000, 1, 28, 28)
    assert split.x_train.dtype == np.float32 and split.y_test.dtype == np.int64
    assert 0.0 == split.x_test.min() and split.x_test.max() == 1.0
    counts = np.bincount(np.concatenate([split.y_train, split.y_test]), minlength=10)
    assert counts.tolist() == MNIST_TEST_LABEL_COUNTS
    assert split.fingerprint == "18489308deedfe2f"  # sha256 of the decompressed idx files


def test_mnist_without_files_is_unavailable_naming_the_path(tmp_path):
    with pytest.raises(DataUnavailable, match="MNIST test set not found at") as err:
        load_clean("mnist", tmp_path, None, None)
    assert str(tmp_path / "mnist_test") in str(err.value)


def test_mnist_without_a_data_root_is_unavailable():
    with pytest.raises(DataUnavailable, match="needs a data root: none set"):
        load_clean("mnist", None, None, None)


def test_default_data_root_follows_the_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("ENTROBENCH_DATA_ROOT", str(tmp_path))
    assert default_data_root() == tmp_path
    monkeypatch.delenv("ENTROBENCH_DATA_ROOT")
    shared = Path(sources.__file__).resolve().parents[2].parent / "shared" / "data"
    assert default_data_root() == (shared if shared.is_dir() else None)


def _fake_cifar10_c(root: Path, per_severity: int = 4) -> np.ndarray:
    folder = root / "CIFAR-10-C"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5 * per_severity, 32, 32, 3), dtype=np.uint8)
    np.save(folder / "fog.npy", images)
    np.save(folder / "labels.npy", np.tile(np.arange(per_severity, dtype=np.uint8), 5))
    return images


def test_cifar10_c_reads_one_severity_as_nchw_floats(tmp_path):
    images = _fake_cifar10_c(tmp_path)
    x, y = load_corrupted("cifar10_c", tmp_path, "fog", 3)
    assert x.shape == (4, 3, 32, 32) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(x, images[8:12].transpose(0, 3, 1, 2) / 255.0, atol=1e-7)
    np.testing.assert_array_equal(y, [0, 1, 2, 3])
    x2, _ = load_corrupted("cifar10_c", tmp_path, "fog", 3, n=2)
    np.testing.assert_array_equal(x2, x[:2])


def test_cifar10_c_missing_is_unavailable_naming_the_path(tmp_path):
    with pytest.raises(DataUnavailable, match="CIFAR-10-C not found at") as err:
        load_corrupted("cifar10_c", tmp_path, "gaussian_noise", 1, n=1)
    assert str(tmp_path / "CIFAR-10-C" / "gaussian_noise.npy") in str(err.value)
    with pytest.raises(DataUnavailable, match="needs a data root"):
        load_corrupted("cifar10_c", None, "gaussian_noise", 1)


def test_cifar10_c_rejects_unknown_names_and_severities(tmp_path):
    with pytest.raises(ValueError, match=r"unknown corrupted benchmark 'imagenet_c' \(expected one of: cifar10_c\)"):
        load_corrupted("imagenet_c", tmp_path, "fog", 1)
    with pytest.raises(ValueError, match=r"unknown corruption 'speckle'"):
        load_corrupted("cifar10_c", tmp_path, "speckle", 1)
    with pytest.raises(ValueError, match=r"severity must be one of 1, 2, 3, 4, 5, got 6"):
        load_corrupted("cifar10_c", tmp_path, "fog", 6)
