"""Teachers and students of the compression family, built by name: `build(arch, n_classes, in_channels)`.

Every network takes images in [0, 1] (a dataset's mean/std normalization sits in its forward,
as non-persistent buffers, so published state dicts load with strict=True) and splits into
`features(x)` (B, F) and a linear head; `forward` = head(features). `AuxHead` adds Dual-Head
KD's second linear head on the same features.

- "cnn_teacher", "cnn_student" (smoke and tiny): conv3x3-BN-ReLU-maxpool blocks, global average
  pool, linear. Widths (16, 32, 32) for the teacher: 14,458 parameters on 1-channel input and
  10 classes; (8, 16, 16) for the student: 3,778 (x3.8 fewer).
- "resnet8x4", "resnet32x4": the CIFAR ResNets of CRD / RepDistiller (models/resnet.py; the
  teachers in mdistiller's cifar_teachers.tar): filters (32, 64, 128, 256), depth 8 or 32.
- "wrn_40_2", "wrn_40_1": Wide ResNets (RepDistiller models/wrn.py), pre-activation blocks.
- "vgg13", "vgg8": RepDistiller's VGG with BN (cfg 'B' and 'S').
- "resnet18", "resnet34": torchvision's ImageNet ResNets (same module names as its state dicts).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NORMALIZATION = {  # per input set: channel mean and std the published weights were trained with
    "cifar100": ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


class Net(nn.Module):
    head_name = "fc"

    def __init__(self, normalization: str = ""):
        super().__init__()
        mean, std = NORMALIZATION.get(normalization, ((0.0,), (1.0,)))
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    @property
    def head(self) -> nn.Linear:
        return getattr(self, self.head_name)

    def features(self, x: torch.Tensor) -> torch.Tensor:  # (B, ch, H, W) in [0, 1] -> (B, F)
        return self.body((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # -> (B, n_classes) logits
        return self.head(self.features(x))


class AuxHead(nn.Module):
    """A student with a second linear head on its features: forward -> (main, aux) logits."""

    def __init__(self, net: Net):
        super().__init__()
        self.net = net
        self.aux = nn.Linear(net.head.in_features, net.head.out_features)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.net.features(x)
        return self.net.head(z), self.aux(z)


class ConvNet(Net):
    def __init__(self, widths: tuple[int, ...], n_classes: int, in_channels: int):
        super().__init__()
        layers, ch = [], in_channels
        for w in widths:
            layers += [nn.Conv2d(ch, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True), nn.MaxPool2d(2, ceil_mode=True)]
            ch = w
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Linear(ch, n_classes)

    def body(self, x):
        return self.convs(x).mean(dim=(2, 3))


# ------------------------------------------------------------------ ResNets (CIFAR and ImageNet)

class BasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet(Net):
    """`imagenet`: torchvision's stem (7x7/2 conv, 3x3/2 max pool) and four stages; else CRD's CIFAR
    stem (3x3 conv) and three stages of (depth - 2) / 6 blocks."""

    def __init__(self, blocks: list[int], filters: list[int], n_classes: int, in_channels: int, imagenet: bool):
        super().__init__("imagenet" if imagenet else "cifar100")
        self.imagenet = imagenet
        self.conv1 = nn.Conv2d(in_channels, filters[0], 7 if imagenet else 3, 2 if imagenet else 1, 3 if imagenet else 1, bias=False)
        self.bn1 = nn.BatchNorm2d(filters[0])
        inplanes, stages = filters[0], filters[1:] if not imagenet else filters
        for i, (n, planes) in enumerate(zip(blocks, stages)):
            stride = 1 if i == 0 else 2
            layer = [BasicBlock(inplanes, planes, stride)] + [BasicBlock(planes, planes) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
            inplanes = planes
        self.n_stages = len(blocks)
        self.fc = nn.Linear(inplanes, n_classes)

    def body(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        if self.imagenet:
            x = F.max_pool2d(x, 3, 2, 1)
        for i in range(self.n_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return x.mean(dim=(2, 3))


# ------------------------------------------------------------------ Wide ResNet (RepDistiller)

class WideBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int):
        super().__init__()
        self.bn1, self.relu1 = nn.BatchNorm2d(inplanes), nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn2, self.relu2 = nn.BatchNorm2d(planes), nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.equal = inplanes == planes
        self.convShortcut = None if self.equal else nn.Conv2d(inplanes, planes, 1, stride, bias=False)

    def forward(self, x):
        pre = self.relu1(self.bn1(x))
        out = self.conv2(self.relu2(self.bn2(self.conv1(pre))))
        return out + (x if self.equal else self.convShortcut(pre))


class NetworkBlock(nn.Module):
    def __init__(self, n: int, inplanes: int, planes: int, stride: int):
        super().__init__()
        self.layer = nn.Sequential(*[WideBlock(inplanes if i == 0 else planes, planes, stride if i == 0 else 1) for i in range(n)])

    def forward(self, x):
        return self.layer(x)


class WideResNet(Net):
    def __init__(self, depth: int, widen: int, n_classes: int, in_channels: int):
        super().__init__("cifar100")
        n, widths = (depth - 4) // 6, [16, 16 * widen, 32 * widen, 64 * widen]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.block1 = NetworkBlock(n, widths[0], widths[1], 1)
        self.block2 = NetworkBlock(n, widths[1], widths[2], 2)
        self.block3 = NetworkBlock(n, widths[2], widths[3], 2)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], n_classes)

    def body(self, x):
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        return F.relu(self.bn1(x)).mean(dim=(2, 3))


# ------------------------------------------------------------------ VGG with BN (RepDistiller)

VGG_CFG = {"vgg8": [[64], [128], [256], [512], [512]], "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]]}


class VGG(Net):
    head_name = "classifier"

    def __init__(self, cfg: list[list[int]], n_classes: int, in_channels: int):
        super().__init__("cifar100")
        ch = in_channels
        for i, widths in enumerate(cfg):
            layers = []
            for w in widths:
                layers += [nn.Conv2d(ch, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
                ch = w
            setattr(self, f"block{i}", nn.Sequential(*layers[:-1]))  # the last ReLU is applied in body
        self.classifier = nn.Linear(512, n_classes)

    def body(self, x):
        for i in range(5):
            x = F.relu(getattr(self, f"block{i}")(x))
            x = F.max_pool2d(x, 2) if i < 4 else x.mean(dim=(2, 3))
        return x


ARCHITECTURES = {
    "cnn_teacher": lambda c, ch: ConvNet((16, 32, 32), c, ch),
    "cnn_student": lambda c, ch: ConvNet((8, 16, 16), c, ch),
    "resnet8x4": lambda c, ch: ResNet([1, 1, 1], [32, 64, 128, 256], c, ch, imagenet=False),
    "resnet32x4": lambda c, ch: ResNet([5, 5, 5], [32, 64, 128, 256], c, ch, imagenet=False),
    "wrn_40_2": lambda c, ch: WideResNet(40, 2, c, ch),
    "wrn_40_1": lambda c, ch: WideResNet(40, 1, c, ch),
    "vgg13": lambda c, ch: VGG(VGG_CFG["vgg13"], c, ch),
    "vgg8": lambda c, ch: VGG(VGG_CFG["vgg8"], c, ch),
    "resnet18": lambda c, ch: ResNet([2, 2, 2, 2], [64, 128, 256, 512], c, ch, imagenet=True),
    "resnet34": lambda c, ch: ResNet([3, 4, 6, 3], [64, 128, 256, 512], c, ch, imagenet=True),
}


def build(arch: str, n_classes: int, in_channels: int, aux_head: bool = False) -> nn.Module:
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r} (expected one of: {', '.join(ARCHITECTURES)})")
    net = ARCHITECTURES[arch](n_classes, in_channels)
    return AuxHead(net) if aux_head else net
