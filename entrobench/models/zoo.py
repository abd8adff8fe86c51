"""Architectures, built by name: `build_model(arch, norm, n_classes, in_channels)`.

Every model takes images in [0, 1]; a model trained on normalized inputs normalizes inside its
forward, so the data readers (entrobench.data.sources) never do.

- "small_cnn" (norm "bn" or "gn"): the smoke-scale CNN of shared/notes/tta-smoke.md,
  122,090 parameters for 10 classes and 1 channel, 320 of them norm affine.
- "wrn28_10" (norm "bn"): WideResNet-28-10, the RobustBench "Standard" CIFAR-10 model used at
  full scale by Tent and EATA. Module names match RobustBench's
  model_zoo/architectures/wide_resnet.py, so its Standard.pt state dict loads (see
  `robustbench_state_dict`). RobustBench builds Standard as a plain WideResNet(28, 10), with no
  mean/std layer, and feeds it CIFAR-10-C as uint8 / 255: inputs are [0, 1] images, unnormalized.
- "resnet50" (norm "bn" or "gn"): ResNet-50 v1.5 (bottleneck, [3, 4, 6, 3], stride on the 3x3
  conv), the ImageNet-C source model of Tent, EATA, SAR and DeYO. With "bn" its state-dict keys are
  torchvision's `resnet50` (conv1, bn1, layer1.0.conv1 ... layer4.2.bn3, layerN.0.downsample.0/1,
  fc); with "gn" they are timm's `resnet50_gn` (the same names, GroupNorm with 32 groups in place
  of every BatchNorm, so no running statistics). The ImageNet mean/std normalization sits in
  forward as non-persistent buffers: absent from the state dict, so published weights load with
  strict=True, and the model takes [0, 1] images like the others.

Published source weights (`PUBLISHED`, chosen per architecture and norm by `published_weights`):
torchvision's ResNet-50 IMAGENET1K_V1 for "bn", timm's resnet50_gn for "gn", RobustBench's
"Standard" WRN-28-10. Each is a pickle as published; `convert_checkpoint` reads it once, on the
staging node (entrobench/stage.py), with torch.load(weights_only=True), unwraps it, checks its
keys and shapes against `build_model`, and writes <data_root>/models/<name>.safetensors with a
JSON beside it (its sha256, the source URL and the source file's sha256). A cell reads only that:
`load_weights` checks the sha256, `load_source_model` builds the model and loads it strictly.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# re-exported: the catalog lives in a module without torch, so a family's plan can resolve names
from entrobench.models.published import DEFAULT_WEIGHTS, MODELS_DIR, PUBLISHED, PublishedWeights, WeightsError, published_weights  # noqa: F401

ARCHITECTURES: dict[str, tuple[str, ...]] = {  # name: the norms it can be built with
    "small_cnn": ("bn", "gn"),
    "wrn28_10": ("bn",),
    "resnet50": ("bn", "gn"),
}
GN_GROUPS = 8  # small_cnn
RESNET50_GN_GROUPS = 32  # timm's GroupNorm default (timm/layers/norm.py), which resnet50_gn uses
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's and timm's ImageNet constants
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_model(arch: str, norm: str, n_classes: int, in_channels: int) -> nn.Module:
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r} (expected one of: {', '.join(ARCHITECTURES)})")
    if norm not in ARCHITECTURES[arch]:
        raise ValueError(f"{arch} has no norm {norm!r} (expected one of: {', '.join(ARCHITECTURES[arch])})")
    if arch == "small_cnn":
        return SmallCNN(norm, n_classes, in_channels)
    if arch == "resnet50":
        return ResNet50(norm, n_classes, in_channels)
    return WideResNet(depth=28, widen_factor=10, n_classes=n_classes, in_channels=in_channels)


def _norm(kind: str, channels: int, groups: int = GN_GROUPS) -> nn.Module:
    return nn.BatchNorm2d(channels) if kind == "bn" else nn.GroupNorm(groups, channels)


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


class Bottleneck(nn.Module):
    """1x1 conv - N - ReLU - 3x3 conv (stride here: v1.5) - N - ReLU - 1x1 conv (x4 width) - N, plus
    the shortcut (1x1 conv - N when the width or stride changes), then ReLU. torchvision's names."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int, norm: str):
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = _norm(norm, planes, RESNET50_GN_GROUPS)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = _norm(norm, planes, RESNET50_GN_GROUPS)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        self.bn3 = _norm(norm, out_planes, RESNET50_GN_GROUPS)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_planes != out_planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False), _norm(norm, out_planes, RESNET50_GN_GROUPS)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet50(nn.Module):
    """ResNet-50 (He et al. 2016) as torchvision builds it: 7x7/2 conv - N - ReLU - 3x3/2 max pool,
    four stages of 3, 4, 6, 3 bottlenecks (widths 64..512, x4 out), global average pool, linear.
    Inputs are [0, 1] RGB images, normalized here with the ImageNet mean/std. Any side works
    (the head pools globally); 224 is the papers' and the weights' size, 32 the smallest that
    keeps a 1x1 map at the last stage."""

    def __init__(self, norm: str, n_classes: int = 1000, in_channels: int = 3):
        super().__init__()
        if in_channels != 3:
            raise ValueError(f"resnet50 normalizes with the ImageNet RGB mean/std: in_channels must be 3, got {in_channels}")
        # non-persistent: kept out of the state dict, so torchvision / timm weights load strictly
        self.register_buffer("input_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("input_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = _norm(norm, 64, RESNET50_GN_GROUPS)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        in_planes = 64
        for i, (planes, blocks, stride) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3), (1, 2, 2, 2)), start=1):
            layer = []
            for b in range(blocks):
                layer.append(Bottleneck(in_planes, planes, stride if b == 0 else 1, norm))
                in_planes = planes * Bottleneck.expansion
            self.add_module(f"layer{i}", nn.Sequential(*layer))
        self.fc = nn.Linear(in_planes, n_classes)
        for m in self.modules():  # torchvision's initialisation (no zero-init of the last norm)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) in [0, 1] -> (B, n_classes)
        x = (x - self.input_mean) / self.input_std
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(x.mean(dim=(2, 3)))  # = AdaptiveAvgPool2d(1) + flatten


def robustbench_state_dict(checkpoint: Mapping) -> dict[str, torch.Tensor]:
    """The state dict inside a RobustBench checkpoint: unwraps {"state_dict": ...} and strips the
    "module." prefix that DataParallel training leaves, as RobustBench's own loader does. A plain
    state dict passes through unchanged: torchvision's released ResNet-50 files (resnet50-*.pth)
    and timm's resnet50_gn file are plain state dicts, so torch.load(path, weights_only=True) of
    either loads into build_model("resnet50", ...) through this function with strict=True."""
    state = checkpoint.get("state_dict", checkpoint)
    return {k.removeprefix("module."): v for k, v in state.items()}


# --- published source weights (the catalog is entrobench.models.published) -----------------------

# Old checkpoints may carry numpy scalars beside the tensors (a "best_prec1" of training): allow
# only what rebuilds such scalars, nothing that can run code.
_NUMPY_SCALARS = [np.dtype, *(type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32"))]
try:
    from numpy._core.multiarray import scalar as _np_scalar
except ImportError:  # numpy < 2
    from numpy.core.multiarray import scalar as _np_scalar
_NUMPY_SCALARS += [_np_scalar, (_np_scalar, "numpy.core.multiarray.scalar"), (_np_scalar, "numpy._core.multiarray.scalar")]


def read_checkpoint(path: Path, layout: str) -> dict[str, torch.Tensor]:
    """The state dict in a published pickle, read without running code (weights_only=True)."""
    try:
        with torch.serialization.safe_globals(_NUMPY_SCALARS):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several kinds for a bad file; one line names it
        first = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        raise WeightsError(f"{path}: not a checkpoint torch.load(weights_only=True) can read ({first[:200]})") from err
    if layout == "robustbench":
        checkpoint = robustbench_state_dict(checkpoint)
    if not isinstance(checkpoint, Mapping) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise WeightsError(f"{path}: expected a state dict of tensors ({layout} layout), got {type(checkpoint).__name__}")
    return dict(checkpoint)


def check_state_dict(state: Mapping[str, torch.Tensor], model: nn.Module, weights: PublishedWeights, where: str) -> None:
    """Keys and shapes of `state` must be those of `model` (built as `weights` says): one line if not."""
    expected = {k: v.shape for k, v in model.state_dict().items()}
    missing, unexpected = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected.keys())
    if missing or unexpected:
        raise WeightsError(
            f"{where}: not {weights.arch}/{weights.norm} weights ({len(missing)} keys missing, e.g. "
            f"{missing[:2]}; {len(unexpected)} unexpected, e.g. {unexpected[:2]})"
        )
    wrong = [k for k in expected if tuple(state[k].shape) != tuple(expected[k])]
    if wrong:
        raise WeightsError(f"{where}: {wrong[0]} has shape {tuple(state[wrong[0]].shape)}, {weights.arch} expects {tuple(expected[wrong[0]])}")


def convert_checkpoint(source: Path, weights: PublishedWeights, data_root: Path, source_sha256: str) -> Path:
    """Once, when staging: the published pickle -> <data_root>/models/<name>.safetensors + .json."""
    from safetensors.torch import save_file

    state = read_checkpoint(source, weights.layout)
    check_state_dict(state, build_model(weights.arch, weights.norm, weights.n_classes, 3), weights, str(source))
    out = Path(data_root) / weights.path
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
    meta = {"name": weights.name, "arch": weights.arch, "norm": weights.norm, "n_classes": weights.n_classes,
            "sha256": file_sha256(tmp), "url": weights.url, "source_file": weights.download, "source_sha256": source_sha256}
    tmp.replace(out)
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    return out


def load_weights(data_root: Path | None, name: str) -> dict[str, torch.Tensor]:
    """A staged state dict, checked against the sha256 recorded when it was staged."""
    from safetensors.torch import load_file

    if name not in PUBLISHED:
        raise WeightsError(f"unknown weights {name!r} (expected one of: {', '.join(PUBLISHED)})")
    path = Path(data_root or "") / PUBLISHED[name].path
    meta_path = path.with_suffix(".json")
    if data_root is None or not path.is_file() or not meta_path.is_file():
        raise WeightsError(f"{path}: not staged (run `python -m entrobench.stage {name} --data-root {data_root}` on a node with internet)")
    recorded = json.loads(meta_path.read_text())["sha256"]
    actual = file_sha256(path)
    if actual != recorded:
        raise WeightsError(f"{path}: sha256 {actual[:16]}... differs from {recorded[:16]}... recorded when it was staged; stage it again")
    return load_file(str(path))


def load_source_model(data_root: Path | None, name: str) -> nn.Module:
    """The published model `name`, built and loaded strictly, in eval mode."""
    state = load_weights(data_root, name)
    weights = PUBLISHED[name]
    model = build_model(weights.arch, weights.norm, weights.n_classes, 3)
    check_state_dict(state, model, weights, str(Path(data_root) / weights.path))
    model.load_state_dict(state, strict=True)
    return model.eval()


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
