"""Clean image sets behind the data root, and the readers of the released CIFAR-10-C arrays and
ImageNet-C JPEGs, run on tiny fake copies of each release's layout."""
import pickle
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
    known = r"\(expected one of: digits, mnist, cifar10, imagenet_val\)"
    with pytest.raises(ValueError, match=r"unknown clean image set 'cifar100' " + known):
        load_clean("cifar100", None, None, None)


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
    with pytest.raises(ValueError, match=r"unknown corrupted benchmark 'cifar100_c' \(expected one of: cifar10_c, imagenet_c"):
        load_corrupted("cifar100_c", tmp_path, "fog", 1)
    with pytest.raises(ValueError, match=r"unknown corruption 'speckle'"):
        load_corrupted("cifar10_c", tmp_path, "speckle", 1)
    with pytest.raises(ValueError, match=r"severity must be one of 1, 2, 3, 4, 5, got 6"):
        load_corrupted("cifar10_c", tmp_path, "fog", 6)


# --- CIFAR-10, python release ----------------------------------------------------------------------


def _write_cifar10_batch(path: Path, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A batch as the release stores it: a protocol-2 pickle of {b"data": uint8 (n, 3072), b"labels": [int]}."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, size=n)]
    batch = {b"batch_label": b"fake", b"labels": labels, b"data": data, b"filenames": [b"x.png"] * n}
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = pickle.dumps(batch, protocol=2)  # the release names numpy 1's module: write that name
    path.write_bytes(raw.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))
    return data.reshape(n, 3, 32, 32), np.asarray(labels)


def test_cifar10_with_test_batch_only_splits_it_60_40_like_mnist(tmp_path):
    images, labels = _write_cifar10_batch(tmp_path / "cifar-10-batches-py" / "test_batch", 20, seed=0)
    split = load_clean("cifar10", tmp_path, None, None)
    order = np.random.default_rng(0).permutation(20)
    assert split.x_train.shape == (12, 3, 32, 32) and split.x_test.shape == (8, 3, 32, 32)
    assert split.x_train.dtype == np.float32 and split.y_train.dtype == np.int64 and split.n_classes == 10
    np.testing.assert_allclose(split.x_train, images[order[:12]] / 255.0, atol=1e-7)  # channel-major rows
    np.testing.assert_array_equal(split.y_test, labels[order[12:]])
    capped = load_clean("cifar10", tmp_path, 3, 2)
    np.testing.assert_array_equal(capped.x_train, split.x_train[:3])
    assert capped.fingerprint == split.fingerprint and len(split.fingerprint) == 16


def test_cifar10_with_training_batches_keeps_the_official_split(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    train = [_write_cifar10_batch(folder / f"data_batch_{i}", 4, seed=i) for i in range(1, 6)]
    test_images, test_labels = _write_cifar10_batch(folder / "test_batch", 20, seed=0)
    split = load_clean("cifar10", tmp_path, None, None)
    assert split.x_train.shape == (20, 3, 32, 32) and split.x_test.shape == (20, 3, 32, 32)
    train_images = np.concatenate([x for x, _ in train])
    seen = {img.tobytes() for img in (split.x_train * 255).round().astype(np.uint8)}
    assert seen == {img.tobytes() for img in train_images}  # every training image, none from test_batch
    np.testing.assert_array_equal(np.sort(split.y_test), np.sort(test_labels))


def test_cifar10_with_some_training_batches_missing_says_which(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar10_batch(folder / "test_batch", 20, seed=0)
    _write_cifar10_batch(folder / "data_batch_1", 4, seed=1)
    with pytest.raises(ValueError, match=r"has data_batch_1 but not data_batch_2, data_batch_3, .* an incomplete copy"):
        load_clean("cifar10", tmp_path, None, None)


def test_cifar10_missing_is_unavailable_naming_the_path(tmp_path):
    with pytest.raises(DataUnavailable, match=r"CIFAR-10 not found at .*see README: Data") as err:
        load_clean("cifar10", tmp_path, None, None)
    assert str(tmp_path / "cifar-10-batches-py" / "test_batch") in str(err.value)


class _RunsCode:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_cifar10_reader_refuses_a_pickle_that_would_run_code(tmp_path, capsys):
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps({b"data": _RunsCode(), b"labels": []}, protocol=2))
    with pytest.raises(ValueError, match=r"not a CIFAR-10 python batch .*refusing to load global \w+\.print"):
        load_clean("cifar10", tmp_path, None, None)
    assert "never run" not in capsys.readouterr().out


# --- ImageNet-C and the ImageNet validation set ----------------------------------------------------

# (width, height) of the fake JPEGs: odd sizes, both orientations, one already 224 square
_SIZES = [(300, 257), (257, 300), (224, 224), (299, 257), (260, 260), (225, 301)]


def _write_jpeg_tree(folder: Path) -> list[int]:
    """2 wnid folders x 3 solid-colour JPEGs; image k (in ImageFolder order) has red = 40k + 10."""
    from PIL import Image

    reds = []
    for k, size in enumerate(_SIZES):
        wnid = ("n01440764", "n01443537")[k // 3]
        (folder / wnid).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (40 * k + 10, 128, 255 - 40 * k)).save(folder / wnid / f"img_{k % 3}.JPEG", quality=95)
        reds.append(40 * k + 10)
    (folder / "n01440764" / "notes.txt").write_text("not an image")
    return reds


@pytest.fixture
def two_classes(monkeypatch):
    monkeypatch.setattr(sources, "IMAGENET_CLASSES", 2)


def test_imagenet_c_reads_a_fixed_permutation_centre_cropped_to_224(tmp_path, two_classes):
    reds = _write_jpeg_tree(tmp_path / "ImageNet-C" / "fog" / "3")
    x, y = load_corrupted("imagenet_c", tmp_path, "fog", 3)
    order = np.random.default_rng(0).permutation(6)
    assert x.shape == (6, 3, 224, 224) and x.dtype == np.float32 and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_array_equal(y, np.array([0, 0, 0, 1, 1, 1])[order])
    np.testing.assert_allclose(x[:, 0].mean(axis=(1, 2)) * 255, np.array(reds)[order], atol=3)  # JPEG rounding
    x2, y2 = load_corrupted("imagenet_c", tmp_path, "fog", 3, n=2)  # the first 2 of the same order
    np.testing.assert_array_equal(x2, x[:2])
    np.testing.assert_array_equal(y2, y[:2])


def test_imagenet_c_is_cropped_not_resized_and_clean_imagenet_is_resized_first(tmp_path, two_classes):
    """ImageNet-C as the authors read it (CenterCrop(224) only); clean images Resize(256) first."""
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (257, 300, 3), dtype=np.uint8)
    for tree in ("ImageNet-C/fog/3", "imagenet/val"):
        for wnid in ("n01440764", "n01443537"):
            (tmp_path / tree / wnid).mkdir(parents=True)
            Image.fromarray(pixels).save(tmp_path / tree / wnid / "a.png")  # lossless: exact pixels
    x, _ = load_corrupted("imagenet_c", tmp_path, "fog", 3, n=1)
    np.testing.assert_array_equal(x[0], pixels[16:240, 38:262].transpose(2, 0, 1) / np.float32(255))  # offsets round(16.5), round(38)
    clean = load_clean("imagenet_val", tmp_path, 1, 0)
    resized = np.asarray(Image.fromarray(pixels).resize((298, 256), Image.Resampling.BILINEAR))[16:240, 37:261]
    np.testing.assert_array_equal(clean.x_train[0], resized.transpose(2, 0, 1) / np.float32(255))


def test_imagenet_c_missing_severity_is_unavailable_naming_the_path(tmp_path):
    _write_jpeg_tree(tmp_path / "ImageNet-C" / "fog" / "3")
    with pytest.raises(DataUnavailable, match=r"ImageNet-C not found at .*see README: Data") as err:
        load_corrupted("imagenet_c", tmp_path, "fog", 4, n=1)
    assert str(tmp_path / "ImageNet-C" / "fog" / "4") in str(err.value)
    with pytest.raises(DataUnavailable, match="needs a data root"):
        load_corrupted("imagenet_c", None, "fog", 3)


def test_imagenet_tree_with_the_wrong_class_count_raises(tmp_path):
    _write_jpeg_tree(tmp_path / "ImageNet-C" / "fog" / "3")  # 2 wnid folders, 1000 expected
    with pytest.raises(ValueError, match=r"expected 1000 class folders, found 2; a partial copy"):
        load_corrupted("imagenet_c", tmp_path, "fog", 3, n=1)


def test_imagenet_val_splits_60_40_and_decodes_only_what_is_asked(tmp_path, two_classes, monkeypatch):
    reds = _write_jpeg_tree(tmp_path / "imagenet" / "val")
    split = load_clean("imagenet_val", tmp_path, None, None)
    order = np.random.default_rng(0).permutation(6)
    assert split.x_train.shape == (4, 3, 224, 224) and split.x_test.shape == (2, 3, 224, 224)
    assert split.n_classes == 2 and len(split.fingerprint) == 16
    np.testing.assert_array_equal(np.concatenate([split.y_train, split.y_test]), np.array([0, 0, 0, 1, 1, 1])[order])
    np.testing.assert_allclose(split.x_test[:, 0].mean(axis=(1, 2)) * 255, np.array(reds)[order[4:]], atol=3)
    decoded = []
    monkeypatch.setattr(sources, "_decode", lambda p, preprocessing: decoded.append(p) or np.zeros((3, 224, 224), np.float32))
    capped = load_clean("imagenet_val", tmp_path, 1, 1)
    assert capped.x_train.shape[0] == capped.x_test.shape[0] == 1 and len(decoded) == 2


def test_imagenet_val_missing_is_unavailable_naming_the_path(tmp_path):
    with pytest.raises(DataUnavailable, match=r"ImageNet validation set not found at .*see README: Data") as err:
        load_clean("imagenet_val", tmp_path, 10, 10)
    assert str(tmp_path / "imagenet" / "val") in str(err.value)


def test_a_missing_release_is_unavailable_naming_where_it_was_looked_for(tmp_path):
    with pytest.raises(DataUnavailable, match=r"imagenet_c not found at .*ImageNet-C \(see README: Data"):
        sources.check_released("imagenet_c", tmp_path)
    (tmp_path / "ImageNet-C" / "fog" / "5").mkdir(parents=True)  # one severity is enough to start: cells check theirs
    sources.check_released("imagenet_c", tmp_path)
    with pytest.raises(DataUnavailable, match=r"cifar10_c not found at .*CIFAR-10-C/labels.npy"):
        sources.check_released("cifar10_c", tmp_path)
