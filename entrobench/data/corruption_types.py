"""The names of the ImageNet-C corruptions, severities and constant tables.

Apart from `corruptions.py` so that reading a card (the Snakefile, every cell) does not pay for
importing scipy: only the jobs that corrupt images do.
"""
from __future__ import annotations

CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise",                        # noise
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",               # blur
    "snow", "frost", "fog", "brightness",                                   # weather
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",        # digital
)
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
TABLES: tuple[str, ...] = ("auto", "cifar10_c", "imagenet_c", "hybrid")
