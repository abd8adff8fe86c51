"""Streaming image data: the papers' preprocessing (checked against torchvision's transforms on
the same JPEG files), the stream order of the TTA protocol, batches decoded in workers."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from entrobench.data import sources
from entrobench.data.images import (
    PREPROCESSING,
    ArrayImages,
    EncodedImages,
    crop_offsets,
    index_image_folder,
    resize_size,
    stream_batches,
    stream_order,
    workers_for,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GOLDEN = json.loads((FIXTURES / "torchvision_golden.json").read_text())
JPEGS = sorted(GOLDEN["files"])


def _ours(path: Path, preset: str) -> torch.Tensor:
    """Our preprocessing of one file, through the same Dataset and float conversion a cell uses."""
    index = index_image_folder(path.parent.parent)
    i = [index.path(k) for k in range(len(index))].index(path)
    x, _ = next(stream_batches(EncodedImages(index, PREPROCESSING[preset]), np.array([i]), 1, workers=0))
    return x[0]


@pytest.fixture(scope="module")
def fixture_tree(tmp_path_factory) -> Path:
    """The fixture JPEGs as a one-class ImageFolder tree (copied byte for byte)."""
    root = tmp_path_factory.mktemp("fixtures")
    (root / "n0").mkdir()
    for name in JPEGS:
        (root / "n0" / name).write_bytes((FIXTURES / name).read_bytes())
    return root


@pytest.mark.parametrize("preset", ["imagenet_c", "imagenet_val"])
@pytest.mark.parametrize("name", JPEGS)
def test_preprocessing_is_torchvisions_on_the_same_jpeg(name, preset, fixture_tree):
    """Hashes written by torchvision's own Compose([Resize(256),] CenterCrop(224), ToTensor())
    (tests/data/fixtures/make_torchvision_golden.py, torchvision 0.29.1)."""
    with Image.open(FIXTURES / name) as img:
        decoded = hashlib.sha256(np.asarray(img.convert("RGB")).tobytes()).hexdigest()
    if decoded != GOLDEN["files"][name]["decoded_sha256"]:
        pytest.skip(f"this Pillow decodes {name} differently from Pillow {GOLDEN['pillow']}, which the hashes were made with")
    ours = _ours(fixture_tree / "n0" / name, preset).numpy()
    want = GOLDEN["files"][name][preset]
    assert list(ours.shape) == want["shape"] and ours.dtype == np.float32
    assert float(ours.astype(np.float64).sum()) == pytest.approx(want["sum"], rel=0, abs=1e-6)
    assert hashlib.sha256(ours.tobytes()).hexdigest() == want["sha256"]


@pytest.mark.parametrize("preset", ["imagenet_c", "imagenet_val"])
def test_preprocessing_equals_torchvision_when_it_is_installed(preset, fixture_tree):
    transforms = pytest.importorskip("torchvision.transforms", reason="torchvision is not installed beside this torch")
    steps = [transforms.CenterCrop(224), transforms.ToTensor()]
    compose = transforms.Compose(([transforms.Resize(256)] if preset == "imagenet_val" else []) + steps)
    for name in JPEGS:
        with open(FIXTURES / name, "rb") as f:
            theirs = compose(Image.open(f).convert("RGB"))
        assert torch.equal(_ours(fixture_tree / "n0" / name, preset), theirs), name


def test_imagenet_c_is_not_resized_and_clean_imagenet_is():
    # ImageNet-C's 224 x 224 JPEGs pass CenterCrop(224) untouched (no 1.14x zoom)
    assert PREPROCESSING["imagenet_c"].resize is None and PREPROCESSING["imagenet_c"].crop == 224
    assert (PREPROCESSING["imagenet_val"].resize, PREPROCESSING["imagenet_val"].crop) == (256, 224)
    assert PREPROCESSING["none"].resize is None and PREPROCESSING["none"].crop is None
    square = Image.fromarray(np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8))
    np.testing.assert_array_equal(PREPROCESSING["imagenet_c"](square), np.asarray(square).transpose(2, 0, 1))


def test_geometry_by_hand():
    assert resize_size(500, 375, 256) == (341, 256)  # int(256 * 500 / 375) = int(341.33)
    assert resize_size(257, 300, 256) == (256, 298)
    assert crop_offsets(341, 256, 224) == (58, 16)  # round(58.5) = 58: half to even
    assert crop_offsets(299, 257, 224) == (38, 16)  # round(37.5) = 38
    # smaller than the crop: torchvision pads (224 - 201) // 2 = 11 before, 12 after
    assert crop_offsets(201, 180, 224) == (-11, -22)


# --- the index and the stream order -----------------------------------------------------------------


def _write_tree(folder: Path, per_class: list[int], size=(40, 30)) -> None:
    """Solid-colour JPEGs; class c, image k has red = 20 c + 5 k."""
    for c, count in enumerate(per_class):
        (folder / f"n{c:08d}").mkdir(parents=True)
        for k in range(count):
            Image.new("RGB", size, (20 * c + 5 * k, 100, 50)).save(folder / f"n{c:08d}" / f"img_{k}.JPEG", quality=95)
    (folder / "n00000000" / "readme.txt").write_text("not an image")


def test_index_lists_the_tree_as_imagefolder_does_and_sources_reads_it(tmp_path, monkeypatch):
    folder = tmp_path / "ImageNet-C" / "fog" / "3"
    _write_tree(folder, [3, 1, 2])
    index = index_image_folder(folder, expect_classes=3)
    assert index.classes == ("n00000000", "n00000001", "n00000002")
    assert [index.path(i).relative_to(folder).as_posix() for i in range(len(index))] == [
        "n00000000/img_0.JPEG", "n00000000/img_1.JPEG", "n00000000/img_2.JPEG", "n00000001/img_0.JPEG", "n00000002/img_0.JPEG", "n00000002/img_1.JPEG"]
    np.testing.assert_array_equal(index.labels, [0, 0, 0, 1, 2, 2])
    monkeypatch.setattr(sources, "IMAGENET_CLASSES", 3)
    again = sources.imagenet_c_folder(tmp_path, "fog", 3)
    assert again.fingerprint == index.fingerprint and len(index.fingerprint) == 16
    np.testing.assert_array_equal(again.files, index.files)


def test_index_refuses_a_partial_tree_and_an_empty_class(tmp_path):
    _write_tree(tmp_path / "a", [1, 1])
    with pytest.raises(ValueError, match=r"a: expected 1000 class folders, found 2; a partial copy would shift every label"):
        index_image_folder(tmp_path / "a", expect_classes=1000)
    (tmp_path / "a" / "n00000009").mkdir()
    with pytest.raises(ValueError, match=r"n00000009: no images in this class folder"):
        index_image_folder(tmp_path / "a")
    with pytest.raises(FileNotFoundError, match=r"missing: no such folder"):
        index_image_folder(tmp_path / "missing")


@pytest.mark.parametrize("n, max_samples", [(None, None), (5, None), (5, 3)])
def test_stream_order_is_the_protocols_imagenet_c_order(tmp_path, monkeypatch, n, max_samples):
    """The same labels, in the same order, as protocols/tta/run.py's _stream over load_corrupted."""
    _write_tree(tmp_path / "ImageNet-C" / "fog" / "3", [3, 2, 2])
    monkeypatch.setattr(sources, "IMAGENET_CLASSES", 3)
    _, y = sources.load_corrupted("imagenet_c", tmp_path, "fog", 3, n=n)
    seed, domain = 2, 4
    expected = y[np.random.default_rng([seed, domain, 1]).permutation(len(y))[: max_samples or None]]
    index = index_image_folder(tmp_path / "ImageNet-C" / "fog" / "3")
    order = stream_order(len(index), seed, domain, n=n, max_samples=max_samples, subset_seed=sources.IMAGENET_C_ORDER_SEED)
    np.testing.assert_array_equal(index.labels[order], expected)


def test_stream_order_of_an_array_set_takes_the_first_n_and_can_sort_by_label():
    labels = np.array([2, 0, 1, 0, 2, 1, 1])
    order = stream_order(7, seed=0, domain=1, n=5)
    assert sorted(order.tolist()) == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(order, np.arange(5)[np.random.default_rng([0, 1, 1]).permutation(5)])
    by_label = stream_order(7, seed=0, domain=1, n=5, labels=labels, label_order="sorted")
    assert labels[by_label].tolist() == sorted(labels[:5].tolist())
    with pytest.raises(ValueError, match="label_order must be 'shuffled' or 'sorted', got 'random'"):
        stream_order(7, 0, 1, label_order="random")


# --- batches --------------------------------------------------------------------------------------


def test_batches_come_in_stream_order_the_same_with_and_without_workers(tmp_path):
    _write_tree(tmp_path, [3, 2, 2], size=(230, 226))
    index = index_image_folder(tmp_path)
    images = EncodedImages(index, PREPROCESSING["imagenet_c"])
    order = stream_order(len(index), seed=1, domain=0)
    inline = list(stream_batches(images, order, batch_size=3, workers=0))
    forked = list(stream_batches(images, order, batch_size=3, workers=2))
    assert [len(y) for _, y in inline] == [3, 3, 1]
    for (x0, y0), (x1, y1) in zip(inline, forked, strict=True):
        assert torch.equal(x0, x1) and np.array_equal(y0, y1)
        assert x0.dtype == torch.float32 and x0.shape[1:] == (3, 224, 224) and 0 <= x0.min() and x0.max() <= 1
    labels = np.concatenate([y for _, y in inline])
    np.testing.assert_array_equal(labels, index.labels[order])
    reds = torch.cat([x[:, 0].mean(dim=(1, 2)) for x, _ in inline]) * 255
    expected = [20 * index.labels[i] + 5 * int(index.path(i).stem.split("_")[1]) for i in order]
    np.testing.assert_allclose(reds.numpy(), expected, atol=2)  # JPEG rounding


def test_an_unreadable_image_is_named(tmp_path):
    _write_tree(tmp_path, [2])
    (tmp_path / "n00000000" / "img_1.JPEG").write_bytes(b"not a jpeg")
    images = EncodedImages(index_image_folder(tmp_path), PREPROCESSING["imagenet_c"])
    with pytest.raises(ValueError, match=r"img_1\.JPEG: not a readable image"):
        list(stream_batches(images, np.array([0, 1]), batch_size=2, workers=0))


def test_array_images_read_only_the_rows_asked_for_from_a_memory_map(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "fog.npy", rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8))
    images = np.load(tmp_path / "fog.npy", mmap_mode="r")
    labels = np.arange(10) % 3
    x, y = next(stream_batches(ArrayImages(images, labels), np.array([7, 2]), batch_size=2, workers=0))
    torch.testing.assert_close(x, torch.from_numpy(np.asarray(images[[7, 2]]).transpose(0, 3, 1, 2) / np.float32(255)))
    assert y.tolist() == [1, 2]
    with pytest.raises(ValueError, match=r"expected uint8 \(N, H, W, C\) images with N labels"):
        ArrayImages(np.zeros((2, 3, 3), np.uint8), [0, 1])


def test_workers_leave_one_cpu_to_the_model():
    assert [workers_for(c) for c in (1, 2, 8)] == [0, 1, 7]
