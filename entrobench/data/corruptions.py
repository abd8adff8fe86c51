"""The 15 ImageNet-C corruptions (Hendrycks & Dietterich, ICLR 2019, arXiv 1903.12261), severities 1..5.

Reference code: github.com/hendrycks/robustness, ImageNet-C/create_c/make_cifar_c.py (the 32-px
CIFAR-10-C constants) and make_imagenet_c.py (224 px). Re-written here for batches: images are
float32 (N, C, H, W) in [0, 1], C = 1 or 3, and every corruption works on the whole batch at once
with numpy + scipy.ndimage. Behaviour follows the reference step by step except where noted:

- motion_blur and snow use ImageMagick's MotionBlurImage in the reference (through Wand). We
  re-implement that operator (one-sided Gaussian of width 2*ceil(radius)+1 sampled along the angle,
  edge pixels repeated), see `_motion_blur`; no ImageMagick needed.
- frost blends in crops of six photos of frost that we do not have. `_frost_layer` draws a
  procedural stand-in (patchy haze plus bright needle crystals); the blend weights are the paper's.
- jpeg_compression uses Pillow, as the reference does (it comes with matplotlib).
- The reference rounds to 8 bits between some steps (PIL/PNG round trips); we keep floats, except
  the uint8 truncations inside glass_blur and snow, which are reproduced because they are cheap.

Constant tables (`table=`): "cifar10_c" (32 px) and "imagenet_c" (224 px) are the reference's;
"auto" picks cifar10_c for images up to 64 px, else imagenet_c. "hybrid" is the recipe of the
smoke-scale TTA check (shared/notes/tta-smoke.md): ImageNet-C strengths for the six corruptions
that act on each pixel alone (noises, brightness, contrast, JPEG quality), whose strength does not
depend on resolution, and CIFAR-10-C's 32-px constants for everything spatial.
"""
from __future__ import annotations

import io

import numpy as np
import scipy.ndimage as ndi
import scipy.signal
import scipy.sparse

from entrobench.data.corruption_types import CORRUPTIONS, SEVERITIES, TABLES  # noqa: F401  (part of this API)

# --- constants, one entry per severity 1..5 --------------------------------------------------------

_CIFAR10_C = {  # make_cifar_c.py
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),             # noise std
    "shot_noise": (500, 250, 100, 75, 50),                        # Poisson photons per unit intensity
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),              # salt-and-pepper fraction
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),  # disk radius, alias blur
    "glass_blur": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),  # sigma, max shift, passes
    "motion_blur": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),  # ImageMagick radius, sigma
    "zoom_blur": ((1.0, 1.06, 0.01), (1.0, 1.11, 0.01), (1.0, 1.16, 0.01), (1.0, 1.21, 0.01), (1.0, 1.26, 0.01)),
    # snow: flake mean, flake std, flake zoom, threshold, blur radius, blur sigma, image weight
    "snow": ((0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
             (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)),
    # frost: image weight, frost weight (reference); crystal size in px (ours: the reference shrinks
    # its frost photos 5x for CIFAR, so crystals are ~1 px thick)
    "frost": ((1, 0.2, 1), (1, 0.3, 1), (0.9, 0.4, 1), (0.85, 0.4, 1), (0.75, 0.45, 1)),
    "fog": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),  # fog strength, fractal roughness decay
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),                      # added to HSV value
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),                        # factor on the deviation from the mean
    # elastic: displacement scale, displacement smoothing, affine corner jitter; fractions of the side
    # (the reference writes IMSIZE * fraction with IMSIZE = 32)
    "elastic_transform": ((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)),
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),                      # downscale factor (box filter)
    "jpeg_compression": (80, 65, 58, 50, 40),                       # JPEG quality
}

_R = 244 / 224  # the reference writes 244 * fraction for 224-px images ("should have been 224")
_IMAGENET_C = {  # make_imagenet_c.py
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),
    "shot_noise": (60, 25, 12, 5, 3),
    "impulse_noise": (0.03, 0.06, 0.09, 0.17, 0.27),
    "defocus_blur": ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
    "glass_blur": ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)),
    "motion_blur": ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),
    "zoom_blur": ((1.0, 1.11, 0.01), (1.0, 1.16, 0.01), (1.0, 1.21, 0.02), (1.0, 1.26, 0.02), (1.0, 1.31, 0.03)),
    "snow": ((0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7), (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
             (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65), (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)),
    "frost": ((1, 0.4, 5), (0.8, 0.6, 5), (0.7, 0.7, 5), (0.65, 0.7, 5), (0.6, 0.75, 5)),  # photos at full size
    "fog": ((1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4)),
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),
    "elastic_transform": ((2 * _R, 0.7 * _R, 0.1 * _R), (2 * _R, 0.08 * _R, 0.2 * _R), (0.05 * _R, 0.01 * _R, 0.02 * _R),
                          (0.07 * _R, 0.01 * _R, 0.02 * _R), (0.12 * _R, 0.01 * _R, 0.02 * _R)),
    "pixelate": (0.6, 0.5, 0.4, 0.3, 0.25),
    "jpeg_compression": (25, 18, 15, 10, 7),
}

_PIXELWISE = ("gaussian_noise", "shot_noise", "impulse_noise", "brightness", "contrast", "jpeg_compression")
_CONSTANTS = {
    "cifar10_c": _CIFAR10_C,
    "imagenet_c": _IMAGENET_C,
    "hybrid": {**_CIFAR10_C, **{name: _IMAGENET_C[name] for name in _PIXELWISE}},
}
AUTO_MAX_SIDE = 64  # "auto": cifar10_c up to this side length, imagenet_c above


def corrupt(images: np.ndarray, name: str, severity: int, rng: np.random.Generator, *, table: str = "auto") -> np.ndarray:
    """Corrupt a batch. images: (N, C, H, W) in [0, 1], C = 1 or 3. Returns float32, same shape, in [0, 1].

    Deterministic for a given state of `rng`; the input is not modified.
    """
    if name not in _CORRUPT:
        raise ValueError(f"unknown corruption {name!r} (expected one of: {', '.join(CORRUPTIONS)})")
    if isinstance(severity, bool) or severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(map(str, SEVERITIES))}, got {severity!r}")
    if table not in TABLES:
        raise ValueError(f"unknown constant table {table!r} (expected one of: {', '.join(TABLES)})")
    x = np.array(images, dtype=np.float32, copy=True)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"images must be (N, C, H, W) with C = 1 or 3, got shape {tuple(x.shape)}")
    if x.size and (x.min() < 0.0 or x.max() > 1.0):
        raise ValueError(
            f"images must be in [0, 1], got values in [{x.min():.3g}, {x.max():.3g}] (divide uint8 images by 255)"
        )
    if table == "auto":
        table = "cifar10_c" if max(x.shape[2:]) <= AUTO_MAX_SIDE else "imagenet_c"
    if x.shape[0] == 0:
        return x
    params = _CONSTANTS[table][name][severity - 1]
    return np.clip(_CORRUPT[name](x, params, rng), 0.0, 1.0).astype(np.float32, copy=False)


# --- noise -----------------------------------------------------------------------------------------


def _gaussian_noise(x, sigma, rng):
    return x + sigma * rng.standard_normal(x.shape, dtype=np.float32)


def _shot_noise(x, photons, rng):
    return rng.poisson(x * photons).astype(np.float32) / photons


def _impulse_noise(x, amount, rng):
    # skimage random_noise(mode="s&p"): each value (channel) independently, half salt, half pepper
    hit = rng.random(x.shape, dtype=np.float32) < amount
    salt = rng.random(x.shape, dtype=np.float32) < 0.5
    x[hit & salt] = 1.0
    x[hit & ~salt] = 0.0
    return x


# --- blur ------------------------------------------------------------------------------------------


def _defocus_blur(x, p, rng):
    radius, alias_blur = p
    return _filter2d(x, _disk_kernel(radius, alias_blur))


def _glass_blur(x, p, rng):
    sigma, delta, passes = p
    n, c, h, w = x.shape
    # the reference stores the first blur as uint8 (truncating)
    x = np.floor(_gaussian_blur(x, sigma, mode="nearest") * 255.0) / 255.0
    rows_visited = np.arange(h - delta, delta, -1)  # the reference sweeps bottom-right to top-left
    cols_visited = np.arange(w - delta, delta, -1)
    for _ in range(passes):
        # numpy's randint(-delta, delta) excludes +delta
        d = rng.integers(-delta, delta, size=(2, n, rows_visited.size, cols_visited.size))
        x = _local_copy(x, rows_visited, cols_visited, d[0], d[1])
    return _gaussian_blur(x, sigma, mode="nearest")


def _local_copy(x, rows, cols, dy, dx):
    """The reference's pixel "swap" `x[h, w], x[h', w'] = x[h', w'], x[h, w]` acts on views of
    (H, W, 3) arrays, so it really copies x[h', w'] into x[h, w] and leaves x[h', w'] as it was.
    The released CIFAR-10-C / ImageNet-C data were made that way, so we copy too, in the same
    order. dy, dx: (N, len(rows), len(cols)) offsets."""
    n, c, h, w = x.shape
    if dy.max(initial=0) <= 0 and dx.max(initial=0) <= 0:
        # Offsets in {-delta..0}: every source lies up/left of its target, so the sweep reaches it
        # later and each copy reads an original value: one gather does the whole sweep.
        src_r = rows[None, :, None] + dy
        src_c = cols[None, None, :] + dx
        flat = x.reshape(n, c, h * w)
        vals = np.take_along_axis(flat, (src_r * w + src_c).reshape(n, 1, -1), axis=2)
        out = x.copy()
        out[:, :, rows[:, None], cols[None, :]] = vals.reshape(n, c, rows.size, cols.size)
        return out
    idx = np.arange(n)
    for i, r in enumerate(rows):  # sequential: later copies may read earlier ones (max shift > 1)
        for j, col in enumerate(cols):
            x[idx, :, r, col] = x[idx, :, r + dy[:, i, j], col + dx[:, i, j]]
    return x


def _motion_blur(x, p, rng):
    radius, sigma = p
    angles = rng.uniform(-45, 45, size=x.shape[0])
    return _imagemagick_motion_blur(x, radius, sigma, angles)


def _zoom_blur(x, p, rng):
    start, stop, step = p
    zooms = np.arange(start, stop, step)
    n, c, h, w = x.shape
    # Average of the image and its centre zooms: all linear, so one sparse (HW x HW) operator.
    op = scipy.sparse.identity(h * w, format="csr", dtype=np.float64)
    for z in zooms:
        op = op + scipy.sparse.kron(_clipped_zoom_matrix(h, z), _clipped_zoom_matrix(w, z), format="csr")
    op = (op / (len(zooms) + 1)).astype(np.float32)
    flat = x.reshape(n * c, h * w)
    return np.asarray(op @ flat.T).T.reshape(n, c, h, w)


# --- weather ---------------------------------------------------------------------------------------


def _snow(x, p, rng):
    loc, scale, zoom, threshold, blur_radius, blur_sigma, keep = p
    n, c, h, w = x.shape
    flakes = rng.normal(loc, scale, size=(n, h, w)).astype(np.float32)
    flakes = _clipped_zoom(flakes, zoom)
    flakes[flakes < threshold] = 0
    flakes = np.floor(np.clip(flakes, 0, 1) * 255.0) / 255.0  # the reference stores the layer as 8-bit PNG
    angles = rng.uniform(-135, -45, size=n)
    flakes = _imagemagick_motion_blur(flakes[:, None], blur_radius, blur_sigma, angles)  # (n, 1, h, w)
    whitened = np.maximum(x, _gray(x) * 1.5 + 0.5)  # the scene gets paler under snow
    x = keep * x + (1 - keep) * whitened
    return x + flakes + flakes[:, :, ::-1, ::-1]  # the layer plus itself rotated by 180 degrees


def _frost(x, p, rng):
    keep, weight, grain = p
    n, c, h, w = x.shape
    frost = _frost_layer(n, h, w, grain, rng)[:, None]  # (n, 1, h, w)
    if c == 3:
        frost = frost * _FROST_TINT  # the photos are blue-white
    return keep * x + weight * frost


_FROST_TINT = np.array([0.88, 0.94, 1.0], dtype=np.float32)[None, :, None, None]


def _frost_layer(n, h, w, grain, rng):
    """Procedural stand-in for a random crop of the reference's frost photos: ice needles in
    random directions, brighter where a fractal haze is dense. (n, h, w) in [0, 1], mean ~0.5.
    Not calibrated against the photos (we do not have them): only the blend weights are the paper's."""
    haze = _plasma_fractal(n, _next_pow2(max(h, w)), 2.0, rng)[:, :h, :w].astype(np.float32)
    seeds = (rng.random((n, h, w), dtype=np.float32) < 0.06 / grain**2).astype(np.float32)
    seeds_f = np.fft.rfft2(seeds)
    half = int(3 * grain)  # needle half-length, px
    taps = np.arange(-half, half + 1)
    weights = np.exp(-0.5 * (taps / (0.6 * half)) ** 2)
    needles = np.zeros((n, h, w), dtype=np.float32)
    for _ in range(3):  # three needle directions per image; a texture, so the image wraps around
        rad = np.deg2rad(rng.uniform(0, 180, size=n))
        kernel = np.zeros((n, h, w), dtype=np.float32)
        for j, k in zip(taps, weights):
            oy = np.ceil(j * np.sin(rad) - 0.5).astype(np.int64) % h
            ox = np.ceil(j * np.cos(rad) - 0.5).astype(np.int64) % w
            np.add.at(kernel, (np.arange(n), oy, ox), k)
        streak = np.fft.irfft2(seeds_f * np.fft.rfft2(kernel), s=(h, w)).astype(np.float32)
        needles = np.maximum(needles, streak)
    needles = ndi.gaussian_filter(needles, sigma=(0, 0.35 * grain, 0.35 * grain), mode="wrap")
    needles /= np.maximum(needles.max(axis=(1, 2), keepdims=True), 1e-6)
    return np.clip(0.25 + 0.35 * haze + 0.6 * needles * (0.4 + haze), 0, 1)


def _fog(x, p, rng):
    strength, decay = p
    n, c, h, w = x.shape
    peak = x.max(axis=(1, 2, 3), keepdims=True)  # per image, over all channels
    fog = _plasma_fractal(n, _next_pow2(max(h, w)), decay, rng)[:, None, :h, :w].astype(np.float32)
    return (x + strength * fog) * peak / (peak + strength)


def _brightness(x, delta, rng):
    # HSV value += delta. With hue and saturation fixed every channel is proportional to the
    # value V = max over channels, so scaling by V'/V is the HSV round trip (black stays grey).
    v = x.max(axis=1, keepdims=True)
    v_new = np.clip(v + delta, 0, 1)
    return np.where(v > 0, x * (v_new / np.maximum(v, 1e-12)), v_new)


# --- digital ---------------------------------------------------------------------------------------


def _contrast(x, factor, rng):
    mean = x.mean(axis=(2, 3), keepdims=True)  # per image and channel
    return (x - mean) * factor + mean


def _elastic_transform(x, p, rng):
    n, c, h, w = x.shape
    side = min(h, w)
    alpha, sigma, jitter = (f * side for f in p)
    # 1. random affine: three points around the centre each moved by up to `jitter` px
    centre = np.array([w // 2, h // 2], dtype=np.float64)  # (x, y)
    s = side // 3
    src_pts = np.array([centre + s, [centre[0] + s, centre[1] - s], centre - s])  # (3, 2)
    dst_pts = src_pts[None] + rng.uniform(-jitter, jitter, size=(n, 3, 2))
    # forward map A p + t takes src_pts to dst_pts; the output samples the input at its inverse
    homog = np.concatenate([src_pts, np.ones((3, 1))], axis=1)  # (3, 3)
    m = np.linalg.solve(homog[None], dst_pts).transpose(0, 2, 1)  # (n, 2, 3)
    a_inv = np.linalg.inv(m[:, :, :2]).astype(np.float32)
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    pts = np.stack([xx, yy])[None] - m[:, :, 2, None, None].astype(np.float32)  # (n, 2, h, w)
    src = np.einsum("nij,njhw->nihw", a_inv, pts)
    x = _bilinear(x, src[:, 1], src[:, 0], mode="mirror")  # cv2.warpAffine, BORDER_REFLECT_101
    # 2. elastic: smoothed uniform noise as a displacement field
    dy = rng.uniform(-1, 1, size=(n, h, w)).astype(np.float32)
    dx = rng.uniform(-1, 1, size=(n, h, w)).astype(np.float32)
    if alpha > 0:
        dy = ndi.gaussian_filter(dy, sigma=(0, sigma, sigma), mode="reflect", truncate=3.0) * alpha
        dx = ndi.gaussian_filter(dx, sigma=(0, sigma, sigma), mode="reflect", truncate=3.0) * alpha
    else:
        dy, dx = np.zeros_like(dy), np.zeros_like(dx)
    # the reference adds its first field (called dx) to the row coordinate; both are i.i.d.
    return _bilinear(x, yy[None] + dy, xx[None] + dx, mode="reflect")


def _pixelate(x, factor, rng):
    n, c, h, w = x.shape
    sh, sw = int(h * factor), int(w * factor)
    # PIL resize(BOX) down, then BOX up again; both are linear maps per axis
    rows = _pil_box_matrix(sh, h) @ _pil_box_matrix(h, sh)
    cols = _pil_box_matrix(sw, w) @ _pil_box_matrix(w, sw)
    return np.matmul(np.matmul(rows.astype(np.float32), x), cols.T.astype(np.float32))


def _jpeg_compression(x, quality, rng):
    try:
        from PIL import Image
    except ImportError as err:  # pragma: no cover - Pillow comes with matplotlib
        raise ImportError("jpeg_compression needs Pillow (pip install pillow)") from err
    n, c, h, w = x.shape
    u8 = np.round(x * 255.0).astype(np.uint8)
    out = np.empty_like(x)
    for i in range(n):
        img = Image.fromarray(u8[i, 0] if c == 1 else u8[i].transpose(1, 2, 0), mode="L" if c == 1 else "RGB")
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=int(quality))
        dec = np.asarray(Image.open(buf), dtype=np.float32) / 255.0
        out[i] = dec[None] if c == 1 else dec.transpose(2, 0, 1)
    return out


_CORRUPT = {
    "gaussian_noise": _gaussian_noise, "shot_noise": _shot_noise, "impulse_noise": _impulse_noise,
    "defocus_blur": _defocus_blur, "glass_blur": _glass_blur, "motion_blur": _motion_blur, "zoom_blur": _zoom_blur,
    "snow": _snow, "frost": _frost, "fog": _fog, "brightness": _brightness,
    "contrast": _contrast, "elastic_transform": _elastic_transform, "pixelate": _pixelate,
    "jpeg_compression": _jpeg_compression,
}
assert tuple(_CORRUPT) == CORRUPTIONS and all(set(t) == set(CORRUPTIONS) for t in _CONSTANTS.values())


# --- helpers ---------------------------------------------------------------------------------------


def _gray(x):
    """Luma (cv2 RGB2GRAY weights); a 1-channel image is its own grey. (N, 1, H, W)."""
    if x.shape[1] == 1:
        return x
    return np.tensordot(np.array([0.299, 0.587, 0.114], dtype=np.float32), x, axes=([0], [1]))[:, None]


def _gaussian_blur(x, sigma, mode):
    """skimage.filters.gaussian over H and W only (truncate 4)."""
    return ndi.gaussian_filter(x, sigma=(0, 0, sigma, sigma), mode=mode, truncate=4.0)


def _disk_kernel(radius, alias_blur):
    """The reference's `disk`: a hard disk on a grid of at least 17x17, normalised, then a small
    Gaussian (3x3, or 5x5 past radius 8) to anti-alias it (cv2.GaussianBlur, reflect-101 border)."""
    half = 8 if radius <= 8 else int(radius)
    ksize = 3 if radius <= 8 else 5
    grid = np.arange(-half, half + 1)
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    disk = (xx**2 + yy**2 <= radius**2).astype(np.float64)
    disk /= disk.sum()
    taps = np.arange(ksize) - ksize // 2
    g = np.exp(-(taps**2) / (2 * alias_blur**2))
    g /= g.sum()
    kernel = ndi.convolve(disk, np.outer(g, g), mode="mirror")
    nz = np.nonzero(kernel)  # exact zeros contribute nothing: trim them to keep the filter small
    return kernel[nz[0].min() : nz[0].max() + 1, nz[1].min() : nz[1].max() + 1]


def _filter2d(x, kernel):
    """cv2.filter2D with its default reflect-101 border, over H and W of a (N, C, H, W) batch."""
    k = kernel.astype(np.float32)
    if k.size <= 49:
        return ndi.correlate(x, k[None, None], mode="mirror")
    ph, pw = k.shape[0] // 2, k.shape[1] // 2
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), mode="reflect")  # numpy reflect == reflect-101
    return scipy.signal.fftconvolve(padded, k[::-1, ::-1][None, None], mode="valid", axes=(2, 3)).astype(np.float32)


def _shift_sum(x, taps, angles, weights):
    """sum_j weights[j] * x shifted by tap j along each image's angle (degrees), edge pixels
    repeated. Offsets are rounded as ImageMagick does: ceil(j * cos(a) - 0.5), ceil(j * sin(a) - 0.5)."""
    n, c, h, w = x.shape
    rad = np.deg2rad(angles)
    out = np.zeros_like(x)
    flat = x.reshape(n, c, h * w)
    for j, k in zip(taps, weights):
        ox = np.ceil(j * np.cos(rad) - 0.5).astype(np.int64)  # (n,)
        oy = np.ceil(j * np.sin(rad) - 0.5).astype(np.int64)
        rows = np.clip(np.arange(h)[None, :] + oy[:, None], 0, h - 1)  # (n, h)
        cols = np.clip(np.arange(w)[None, :] + ox[:, None], 0, w - 1)  # (n, w)
        idx = (rows[:, :, None] * w + cols[:, None, :]).reshape(n, 1, h * w)
        out += np.float32(k) * np.take_along_axis(flat, idx, axis=2).reshape(n, c, h, w)
    return out


def _imagemagick_motion_blur(x, radius, sigma, angles):
    """ImageMagick MotionBlurImage: width 2*ceil(radius)+1 taps at 0, 1, 2, ... px along the angle,
    weights exp(-j^2 / 2 sigma^2) normalised (a one-sided Gaussian), edge virtual pixels."""
    width = int(2 * np.ceil(radius) + 1)
    taps = np.arange(width)
    weights = np.exp(-(taps**2) / (2.0 * sigma**2))
    return _shift_sum(x, taps, angles, weights / weights.sum())


def _zoom_matrix(n_in, n_out):
    """scipy.ndimage.zoom(order=1) along one axis as a matrix: out[o] samples in at o*(n_in-1)/(n_out-1)."""
    pos = np.arange(n_out) * (n_in - 1) / max(n_out - 1, 1)
    i0 = np.minimum(np.floor(pos).astype(np.int64), n_in - 1)
    frac = pos - i0
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), i0), 1 - frac)
    np.add.at(m, (np.arange(n_out), np.minimum(i0 + 1, n_in - 1)), frac)
    return m


def _clipped_zoom_matrix(size, zoom):
    """The reference's clipped_zoom along one axis: crop the centre ceil(size/zoom), zoom it by
    `zoom` (linear), cut the centre `size` back out. A (size, size) matrix."""
    crop = int(np.ceil(size / zoom))
    top = (size - crop) // 2
    zoomed = int(round(crop * zoom))
    trim = (zoomed - size) // 2
    m = np.zeros((size, size))
    m[:, top : top + crop] = _zoom_matrix(crop, zoomed)[trim : trim + size]
    return m


def _clipped_zoom(x, zoom):
    """clipped_zoom on the last two axes of (..., H, W)."""
    h, w = x.shape[-2:]
    rows = _clipped_zoom_matrix(h, zoom).astype(np.float32)
    cols = _clipped_zoom_matrix(w, zoom).astype(np.float32)
    return np.matmul(np.matmul(rows, x), cols.T)


def _pil_box_matrix(n_in, n_out):
    """PIL Image.resize(..., BOX) along one axis as a matrix (its precompute_coeffs, box filter)."""
    scale = n_in / n_out
    filter_scale = max(scale, 1.0)
    support = 0.5 * filter_scale
    m = np.zeros((n_out, n_in))
    for o in range(n_out):
        centre = (o + 0.5) * scale
        lo, hi = max(int(centre - support + 0.5), 0), min(int(centre + support + 0.5), n_in)
        j = np.arange(lo, hi)
        t = (j - centre + 0.5) / filter_scale
        k = ((t > -0.5) & (t <= 0.5)).astype(np.float64)
        m[o, j] = k / k.sum()
    return m


def _plasma_fractal(n, size, decay, rng):
    """Diamond-square height maps, as the reference's plasma_fractal, for n images at once.
    (n, size, size) float64 in [0, 1]; size a power of two."""
    m = np.zeros((n, size, size))
    step, wibble = size, 100.0
    while step >= 2:
        half = step // 2
        # squares: the centre of each square gets the mean of its corners plus noise
        corners = m[:, 0::step, 0::step]
        acc = corners + np.roll(corners, -1, axis=1)
        acc = acc + np.roll(acc, -1, axis=2)
        m[:, half::step, half::step] = acc / 4 + wibble * rng.uniform(-wibble, wibble, acc.shape)
        # diamonds: the edge midpoints get the mean of their two corners and two centres
        centres, corners = m[:, half::step, half::step], m[:, 0::step, 0::step]
        acc = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=2)
        m[:, 0::step, half::step] = acc / 4 + wibble * rng.uniform(-wibble, wibble, acc.shape)
        acc = centres + np.roll(centres, 1, axis=2) + corners + np.roll(corners, -1, axis=1)
        m[:, half::step, 0::step] = acc / 4 + wibble * rng.uniform(-wibble, wibble, acc.shape)
        step //= 2
        wibble /= decay
    m -= m.min(axis=(1, 2), keepdims=True)
    return m / m.max(axis=(1, 2), keepdims=True)


def _next_pow2(k):
    return 1 << max(int(k) - 1, 1).bit_length()


_NUMPY_PAD = {"mirror": "reflect", "reflect": "symmetric", "nearest": "edge"}  # scipy.ndimage name -> np.pad


def _bilinear(x, rows, cols, mode):
    """Sample each image of (N, C, H, W) at float coordinates rows, cols: (N, H, W); bilinear,
    outside the image extended by `mode` (scipy.ndimage names: mirror = reflect-101, reflect, nearest)."""
    n, c, h, w = x.shape
    r0, c0 = np.floor(rows), np.floor(cols)
    fr, fc = (rows - r0).astype(np.float32)[:, None], (cols - c0).astype(np.float32)[:, None]
    r0, c0 = r0.astype(np.int64), c0.astype(np.int64)
    # pad by the reach of the coordinates, then every neighbour is a plain index into the padded image
    pr = max(0, -int(r0.min()), int(r0.max()) + 2 - h)
    pc = max(0, -int(c0.min()), int(c0.max()) + 2 - w)
    xp = np.pad(x, ((0, 0), (0, 0), (pr, pr), (pc, pc)), mode=_NUMPY_PAD[mode])
    wp = w + 2 * pc
    flat = xp.reshape(n, c, -1)
    base = ((r0 + pr) * wp + (c0 + pc)).reshape(n, 1, h * w)

    def at(offset):
        return np.take_along_axis(flat, base + offset, axis=2).reshape(n, c, h, w)

    top = at(0) * (1 - fc) + at(1) * fc
    bottom = at(wp) * (1 - fc) + at(wp + 1) * fc
    return top * (1 - fr) + bottom * fr
