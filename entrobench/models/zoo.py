"""Architectures, built by name: `build_model(arch, norm, n_classes, in_channels)`.

- "small_cnn" (norm "bn" or "gn"): the smoke-scale CNN of shared/notes/tta-smoke.md,
  122,090 parameters for 10 classes and 1 channel, 320 of them norm affine.
- "wrn28_10" (norm "bn"): WideResNet-28-10, the RobustBench "Standard" CIFAR-10 model used at
  full scale by Tent and EATA. Module names match RobustBench's
  model_zoo/architectures/wide_resnet.py, so its Standard.pt state dict loads (see
  `robustbench_state_dict`); inputs are [0, 1] images, no normalization layer.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

ARCHITECTURES: dict[str, tuple[str, ...]] = {  # name: the norms it can be built with
    "small_cnn": ("bn", "gn"),
    "wrn28_10": ("bn",),
}
GN_GROUPS = 8


def build_model(arch: str, norm: str, n_classes: int, in_channels: int) -> nn.Module:
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r} (expected one of: {', '.join(ARCHITECTURES)})")
    if norm not in ARCHITECTURES[arch]:
        raise ValueError(f"{arch} has no norm {norm!r} (expected one of: {', '.join(ARCHITECTURES[arch])})")
    if arch == "small_cnn":
        return SmallCNN(norm, n_classes, in_channels)
    return WideResNet(depth=28, widen_factor=10, n_classes=n_classes, in_channels=in_channels)


def _norm(kind: str, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if kind == "bn" else nn.GroupNorm(GN_GROUPS, channels)


class SmallCNN(nn.Module):
    """conv3x3(32)-N-ReLU-maxpool2, conv3x3(64)-N-ReLU-maxpool2, conv5x5(64)-N-ReLU, global
    average pool, linear. Convolutions have no bias (the norm's shift plays that part). Any input
    side >= 4 works; the global pool makes the head independent of it."""

    def __init__(self, norm: str, n_classes: int, in_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 3, padding=1, bias=False)
        self.norm1 = _norm(norm, 32)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1, bias=False)
        self.norm2 = _norm(norm, 64)
        self.conv3 = nn.Conv2d(64, 64, 5, padding=2, bias=False)
        self.norm3 = _norm(norm, 64)
        self.fc = nn.Linear(64, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, n_classes)
        x = F.max_pool2d(F.relu(self.norm1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.norm2(self.conv2(x))), 2)
        x = F.relu(self.norm3(self.conv3(x)))
        return self.fc(x.mean(dim=(2, 3)))


class BasicBlock(nn.Module):
    """Pre-activation wide block: BN-ReLU-conv3x3-BN-ReLU-conv3x3, plus a 1x1 projection on the
    shortcut when the width or stride changes (it then takes the pre-activated input)."""

    def __init__(self, in_planes: int, out_planes: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, stride=1, padding=1, bias=False)
        self.equalInOut = in_planes == out_planes  # RobustBench's names, kept so state dicts match
        self.convShortcut = None if self.equalInOut else nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = self.relu1(self.bn1(x))
        out = self.conv2(self.relu2(self.bn2(self.conv1(act))))
        return out + (x if self.convShortcut is None else self.convShortcut(act))


class NetworkBlock(nn.Module):
    def __init__(self, n_layers: int, in_planes: int, out_planes: int, stride: int):
        super().__init__()
        self.layer = nn.Sequential(
            *[BasicBlock(in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1) for i in range(n_layers)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class WideResNet(nn.Module):
    """WRN-depth-k (Zagoruyko & Komodakis 2016) as in RobustBench: widths 16, 16k, 32k, 64k;
    (depth - 4) / 6 blocks per stage; final BN-ReLU, global average pool, linear."""

    def __init__(self, depth: int = 28, widen_factor: int = 10, n_classes: int = 10, in_channels: int = 3):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WideResNet depth must be 6n + 4, got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, stride=1, padding=1, bias=False)
        self.block1 = NetworkBlock(n, widths[0], widths[1], 1)
        self.block2 = NetworkBlock(n, widths[1], widths[2], 2)
        self.block3 = NetworkBlock(n, widths[2], widths[3], 2)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(widths[3], n_classes)
        for m in self.modules():  # RobustBench's initialisation
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, 32, 32) -> (B, n_classes)
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = self.relu(self.bn1(out))
        return self.fc(out.mean(dim=(2, 3)))  # = avg_pool2d(8) on 32x32 inputs


def robustbench_state_dict(checkpoint: Mapping) -> dict[str, torch.Tensor]:
    """The state dict inside a RobustBench checkpoint: unwraps {"state_dict": ...} and strips the
    "module." prefix that DataParallel training leaves, as RobustBench's own loader does."""
    state = checkpoint.get("state_dict", checkpoint)
    return {k.removeprefix("module."): v for k, v in state.items()}
