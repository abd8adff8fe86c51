"""The 15 ImageNet-C corruptions: contract (shape, dtype, range, determinism), severity ordering on
real digits, and the pieces that re-implement a library operator checked against that operator."""
import numpy as np
import pytest
import scipy.ndimage as ndi

from entrobench.data import corruptions as C
from entrobench.data.corruptions import CORRUPTIONS, corrupt
from entrobench.data.sources import load_clean


@pytest.fixture(scope="module")
def digits():
    return load_clean("digits", None, 0, 256).x_test  # (256, 1, 32, 32) in [0, 1]


@pytest.fixture(scope="module")
def rgb():
    rng = np.random.default_rng(7)
    smooth = ndi.gaussian_filter(rng.random((6, 3, 32, 32)), sigma=(0, 0, 2, 2))
    return ((smooth - smooth.min()) / np.ptp(smooth)).astype(np.float32)


def test_names_are_the_fifteen_imagenet_c_corruptions():
    assert len(CORRUPTIONS) == 15 and len(set(CORRUPTIONS)) == 15
    assert CORRUPTIONS[0] == "gaussian_noise" and CORRUPTIONS[-1] == "jpeg_compression"


@pytest.mark.parametrize("name", CORRUPTIONS)
@pytest.mark.parametrize("shape", [(5, 1, 28, 28), (4, 3, 32, 32), (3, 1, 20, 36)])
def test_corruption_keeps_shape_dtype_and_range(name, shape):
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    for severity in range(1, 6):
        y = corrupt(x, name, severity, np.random.default_rng(severity))
        assert y.shape == shape and y.dtype == np.float32
        assert np.isfinite(y).all() and y.min() >= 0.0 and y.max() <= 1.0


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_corruption_works_at_224_px_with_imagenet_constants(name):
    x = np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)
    y = corrupt(x, name, 5, np.random.default_rng(0))  # auto -> imagenet_c
    assert y.shape == x.shape and y.dtype == np.float32 and 0.0 <= y.min() and y.max() <= 1.0


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_corruption_is_deterministic_under_a_seed_and_leaves_the_input(name, digits):
    x = digits[:32].copy()
    a = corrupt(x, name, 3, np.random.default_rng(123))
    b = corrupt(x, name, 3, np.random.default_rng(123))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(x, digits[:32])


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_corruption_changes_the_clean_image_at_severity_5(name, digits):
    y = corrupt(digits, name, 5, np.random.default_rng(0))
    assert np.abs(y - digits).mean() > 0.005


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_corruption_works_on_rgb(name, rgb):
    y = corrupt(rgb, name, 5, np.random.default_rng(0))
    assert y.shape == rgb.shape and y.dtype == np.float32
    assert 0.0 <= y.min() and y.max() <= 1.0 and np.abs(y - rgb).mean() > 0.003


# Pixel distance to the clean image is not a perfect proxy for severity. Where the reference
# constants make it genuinely non-monotone, the allowed relative drop between two consecutive
# severities, and why:
NON_MONOTONE_TOLERANCE = {
    # severities 3 and 5 differ from 2 and 4 only by a larger blur sigma, and the blur partly
    # undoes the local pixel shuffling (measured drop on digits: 3%)
    "glass_blur": 0.05,
    # severity 3 -> 4 lowers the image weight (0.9 -> 0.85) at the same frost weight (0.4): on
    # dark digit images the dimming cancels part of the added frost (measured drop: 8.5%)
    "frost": 0.10,
}
ELASTIC_REASON = (
    "CIFAR-10-C shrinks the random affine jitter (8% -> 3% of the side) while it grows the local "
    "warp, so the pixel distance to the clean image falls with severity"
)


def _severity_cases():
    for table in ("cifar10_c", "hybrid"):
        for name in CORRUPTIONS:
            marks = [pytest.mark.xfail(strict=True, reason=ELASTIC_REASON)] if name == "elastic_transform" else []
            yield pytest.param(name, table, marks=marks, id=f"{table}-{name}")


@pytest.mark.parametrize("name, table", list(_severity_cases()))
def test_corruption_distance_to_clean_grows_with_severity(name, table, digits):
    dist = [np.abs(corrupt(digits, name, s, np.random.default_rng(0), table=table) - digits).mean() for s in range(1, 6)]
    tol = NON_MONOTONE_TOLERANCE.get(name, 1e-6)
    for s in range(4):
        assert dist[s + 1] >= dist[s] * (1 - tol), f"severity {s + 2} closer to clean than {s + 1}: {np.round(dist, 4)}"
    assert dist[4] > dist[0], np.round(dist, 4)


def test_hybrid_table_takes_imagenet_strength_for_pixelwise_and_cifar_for_spatial(digits):
    for name, other in (("gaussian_noise", "imagenet_c"), ("defocus_blur", "cifar10_c")):
        a = corrupt(digits[:8], name, 5, np.random.default_rng(0), table="hybrid")
        b = corrupt(digits[:8], name, 5, np.random.default_rng(0), table=other)
        np.testing.assert_array_equal(a, b)


def test_auto_table_is_cifar_up_to_64_px_and_imagenet_above():
    for side, table in ((64, "cifar10_c"), (96, "imagenet_c")):
        x = np.full((1, 1, side, side), 0.5, dtype=np.float32)
        auto = corrupt(x, "gaussian_noise", 5, np.random.default_rng(0))
        np.testing.assert_array_equal(auto, corrupt(x, "gaussian_noise", 5, np.random.default_rng(0), table=table))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"name": "gausian_noise"}, r"unknown corruption 'gausian_noise' \(expected one of: gaussian_noise, shot_noise"),
        ({"severity": 0}, r"severity must be one of 1, 2, 3, 4, 5, got 0"),
        ({"severity": 6}, r"got 6"),
        ({"severity": True}, r"got True"),
        ({"table": "cifar"}, r"unknown constant table 'cifar' \(expected one of: auto, cifar10_c"),
    ],
)
def test_bad_arguments_raise_value_error_naming_value_and_allowed(kwargs, match):
    args = {"name": "fog", "severity": 3, "table": "auto", **kwargs}
    x = np.zeros((1, 1, 8, 8), np.float32)
    with pytest.raises(ValueError, match=match):
        corrupt(x, args["name"], args["severity"], np.random.default_rng(0), table=args["table"])


def test_bad_image_shape_or_range_raises():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) with C = 1 or 3"):
        corrupt(np.zeros((2, 28, 28), np.float32), "fog", 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"images must be in \[0, 1\], got values in \[0, 255\]"):
        corrupt(np.array([0, 255], np.uint8).reshape(1, 1, 1, 2), "fog", 1, np.random.default_rng(0))


# --- re-implemented operators against the originals ------------------------------------------------


def test_gaussian_noise_has_the_table_std():
    x = np.full((4, 1, 32, 32), 0.5, dtype=np.float32)
    for severity, sigma in enumerate(C._CIFAR10_C["gaussian_noise"], start=1):
        assert (corrupt(x, "gaussian_noise", severity, np.random.default_rng(0)) - x).std() == pytest.approx(sigma, rel=0.05)


def test_pixelate_matches_pil_box_resize_down_and_up():
    from PIL import Image

    x = np.random.default_rng(0).random((1, 1, 28, 30), dtype=np.float32)
    factor = C._CIFAR10_C["pixelate"][4]
    img = Image.fromarray(x[0, 0], mode="F")
    ref = np.asarray(img.resize((int(30 * factor), int(28 * factor)), Image.BOX).resize((30, 28), Image.BOX))
    np.testing.assert_allclose(corrupt(x, "pixelate", 5, np.random.default_rng(0))[0, 0], ref, atol=1e-6)


def test_brightness_matches_an_hsv_round_trip():
    from matplotlib.colors import hsv_to_rgb, rgb_to_hsv

    x = np.random.default_rng(0).random((2, 3, 8, 8), dtype=np.float32)
    x[0, :, 0, 0] = 0.0  # a black pixel: zero saturation, turns grey
    hsv = rgb_to_hsv(x.transpose(0, 2, 3, 1))
    hsv[..., 2] = np.clip(hsv[..., 2] + C._CIFAR10_C["brightness"][4], 0, 1)
    ref = hsv_to_rgb(hsv).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(corrupt(x, "brightness", 5, np.random.default_rng(0)), ref, atol=1e-5)


def test_motion_blur_is_imagemagicks_one_sided_gaussian():
    x = np.random.default_rng(0).random((1, 1, 6, 9), dtype=np.float32)
    radius, sigma = 3, 1.5
    out = C._imagemagick_motion_blur(x, radius, sigma, np.array([0.0]))  # angle 0: along +x
    k = np.exp(-np.arange(7) ** 2 / (2 * sigma**2))
    k /= k.sum()
    ref = np.zeros_like(x)
    for col in range(9):
        for j in range(7):  # edge pixels repeat past the border
            ref[..., col] += k[j] * x[..., min(col + j, 8)]
    np.testing.assert_allclose(out, ref, atol=1e-6)


def test_clipped_zoom_matches_crop_then_scipy_zoom():
    x = np.random.default_rng(0).random((2, 28, 28)).astype(np.float32)
    for zoom in (1.06, 1.25, 1.75, 2.25):
        crop = int(np.ceil(28 / zoom))
        top = (28 - crop) // 2
        zoomed = ndi.zoom(x[:, top : top + crop, top : top + crop], (1, zoom, zoom), order=1)
        trim = (zoomed.shape[1] - 28) // 2
        np.testing.assert_allclose(C._clipped_zoom(x, zoom), zoomed[:, trim : trim + 28, trim : trim + 28], atol=1e-5)


def test_glass_blur_local_copy_gather_equals_the_reference_sweep():
    rng = np.random.default_rng(0)
    x = rng.random((3, 2, 10, 12)).astype(np.float32)
    rows, cols = np.arange(9, 1, -1), np.arange(11, 1, -1)
    dy, dx = (rng.integers(-1, 1, size=(3, rows.size, cols.size)) for _ in range(2))
    ref = x.copy()
    for n in range(3):  # the reference: one image at a time, copy x[h', w'] into x[h, w]
        for i, h in enumerate(rows):
            for j, w in enumerate(cols):
                ref[n, :, h, w] = ref[n, :, h + dy[n, i, j], w + dx[n, i, j]]
    np.testing.assert_array_equal(C._local_copy(x.copy(), rows, cols, dy, dx), ref)


def test_defocus_kernel_of_a_subpixel_disk_is_a_3x3_gaussian():
    radius, alias = C._CIFAR10_C["defocus_blur"][0]
    g = np.exp(-np.array([1.0, 0.0, 1.0]) / (2 * alias**2))
    g /= g.sum()
    np.testing.assert_allclose(C._disk_kernel(radius, alias), np.outer(g, g), atol=1e-12)


def test_bilinear_sampler_matches_scipy_map_coordinates():
    rng = np.random.default_rng(0)
    x = rng.random((2, 1, 9, 11)).astype(np.float32)
    rows, cols = rng.uniform(-5, 14, (2, 9, 11)), rng.uniform(-6, 17, (2, 9, 11))
    for mode, scipy_mode in (("mirror", "mirror"), ("reflect", "grid-mirror"), ("nearest", "nearest")):
        ref = np.stack([ndi.map_coordinates(x[i, 0], [rows[i], cols[i]], order=1, mode=scipy_mode) for i in range(2)])
        np.testing.assert_allclose(C._bilinear(x, rows, cols, mode)[:, 0], ref, atol=1e-5)
