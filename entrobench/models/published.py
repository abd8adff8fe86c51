"""Published source weights: what each is, where it comes from, the checksum its publisher pins,
and which one a model built with a given architecture and norm loads (a GroupNorm setting gets
GroupNorm weights). Plain data, no torch: a family resolves names here while the DAG plans;
entrobench.models.zoo converts, checks and loads the files.
"""
from __future__ import annotations

from dataclasses import dataclass


MODELS_DIR = "models"  # under the data root


class WeightsError(ValueError):
    """A weights file that is missing, altered or of another layout; the message is one line."""


@dataclass(frozen=True)
class PublishedWeights:
    name: str  # <data_root>/models/<name>.safetensors once staged
    arch: str  # build_model name
    norm: str
    n_classes: int
    url: str
    download: str  # the published file's name
    checksum: str  # "sha256:<hex>" (full), "sha256-prefix:<hex>" (what the publisher's file name pins), "" (none published)
    layout: str  # "state_dict": a plain state dict; "robustbench": {"state_dict": ...} with "module." prefixes
    source: str  # who publishes it, and what the checksum rests on

    @property
    def path(self) -> str:
        """Where the staged file lives, relative to the data root."""
        return f"{MODELS_DIR}/{self.name}.safetensors"


PUBLISHED = {
    w.name: w
    for w in (
        PublishedWeights(
            "resnet50_bn_torchvision_v1", "resnet50", "bn", 1000,
            "https://download.pytorch.org/models/resnet50-0676ba61.pth", "resnet50-0676ba61.pth",
            "sha256-prefix:0676ba61", "state_dict",
            "torchvision ResNet50_Weights.IMAGENET1K_V1 (top-1 76.13; not V2). The authors' models/Res.py loads "
            "resnet50-19c8e357.pth, the legacy URL of V1 (not compared byte for byte here); torchvision pins the "
            "first 8 hex of the file's sha256 in its name",
        ),
        PublishedWeights(
            "resnet50_gn_timm", "resnet50", "gn", 1000,
            "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-rsb-weights/resnet50_gn_a1h2-8fe6c4d0.pth",
            "resnet50_gn_a1h2-8fe6c4d0.pth",
            "sha256:8fe6c4d08094e791f17c7835e1bdd3a64fccc0b849bfc1ea339b3bbf372fac85", "state_dict",
            "timm's resnet50_gn (resnet50_gn.a1h_in1k), which SAR's and DeYO's code create; timm pins the first 8 hex "
            "in the name, the full sha256 is a third party's measurement that agrees with them",
        ),
        PublishedWeights(
            "wrn28_10_robustbench_standard", "wrn28_10", "bn", 10,
            "https://drive.usercontent.google.com/download?id=1t98aEuzeTL8P7Kpd5DIrCoCL21BNZUhC&export=download&confirm=t",
            "Standard.pt", "", "robustbench",
            "RobustBench cifar10 'Standard' (Google Drive id 1t98aEuzeTL8P7Kpd5DIrCoCL21BNZUhC); RobustBench publishes "
            "no checksum, so staging records the sha256 it downloaded and every later load checks against that",
        ),
    )
}
# The weights a setting's norm selects: a GroupNorm setting gets GroupNorm weights.
DEFAULT_WEIGHTS = {
    ("resnet50", "bn"): "resnet50_bn_torchvision_v1",
    ("resnet50", "gn"): "resnet50_gn_timm",
    ("wrn28_10", "bn"): "wrn28_10_robustbench_standard",
}


def published_weights(arch: str, norm: str) -> PublishedWeights:
    """The published weights for a model built as build_model(arch, norm, ...)."""
    try:
        return PUBLISHED[DEFAULT_WEIGHTS[arch, norm]]
    except KeyError:
        known = ", ".join(f"{a}/{n}" for a, n in DEFAULT_WEIGHTS)
        raise WeightsError(f"no published weights for {arch} with norm {norm!r} (known: {known})") from None
