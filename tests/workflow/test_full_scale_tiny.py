"""Full scale's code path at tiny size, end to end through the DAG, as a cluster runs it: a fake
ImageNet-C of real JPEG files (1000 class folders, one image each) and a clean validation tree
under a data root in tmp, the published ResNet-50 BN and GN weights in their real format and key
layout (random values) staged as a cluster's login node stages them, a tiny card in a scratch
configs folder; then build -> run-cell -> table. A staged file altered afterwards fails its build
with one line. The slow part is ResNet-50 at 224 px on a CPU (a few batches of 4)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from entrobench.models import zoo
from entrobench.stage import stage, weights_item

REPO = Path(__file__).resolve().parents[2]
CARD = "imagenet_tiny"
SETTINGS = [
    {"name": "reset_bs4", "batch_size": 4, "norm": "bn", "max_samples": 8},
    {"name": "label_shift_gn", "batch_size": 4, "norm": "gn", "max_samples": 8, "label_shift": 500000},
]

pytestmark = pytest.mark.slow


def _jpeg_tree(folder: Path, seed: int) -> None:
    """1000 class folders of one 224 x 224 JPEG each (a colour ramp plus noise)."""
    from PIL import Image

    ramp = np.linspace(0, 200, 224)[None, :, None]
    for c in range(1000):
        rng = np.random.default_rng([seed, c])
        pixels = np.clip(ramp * rng.uniform(0.2, 1.0, 3) + rng.normal(0, 20, (224, 224, 3)), 0, 255).astype(np.uint8)
        (folder / f"n{c:08d}").mkdir(parents=True)
        Image.fromarray(pixels).save(folder / f"n{c:08d}" / f"ILSVRC2012_val_{c:08d}.JPEG", quality=85)


def _stage_weights(root: Path, tmp: Path, name: str) -> None:
    """The publisher's file (a plain state dict pickle, torchvision's and timm's layout) with
    random values, fetched from a file:// URL against its sha256 and converted, as `stage` does."""
    w = zoo.PUBLISHED[name]
    torch.manual_seed(0)
    published = tmp / w.download
    state = zoo.build_model(w.arch, w.norm, w.n_classes, 3).state_dict()
    state["fc.weight"] *= 10  # a confident head, so that entropy filters let samples through and SAR/EATA adapt
    torch.save(state, published)
    pinned = dataclasses.replace(w, url=published.as_uri(), checksum="sha256:" + hashlib.sha256(published.read_bytes()).hexdigest())
    (outcome,) = stage([weights_item(pinned)], root, log=lambda m: None)
    assert outcome.status == "staged", outcome.message
    published.unlink()


@pytest.fixture(scope="module")
def full_tiny(tmp_path_factory):
    work = tmp_path_factory.mktemp("full_tiny")
    root = work / "data"
    for corruption in ("gaussian_noise", "fog"):
        _jpeg_tree(root / "ImageNet-C" / corruption / "5", seed=len(corruption))
    _jpeg_tree(root / "imagenet" / "val", seed=0)
    for name in ("resnet50_bn_torchvision_v1", "resnet50_gn_timm"):
        _stage_weights(root, work, name)
    configs = work / "configs"
    shutil.copytree(REPO / "configs" / "_defaults", configs / "_defaults")
    (configs / "tta").mkdir()
    card = {
        "version": 1, "title": "ImageNet-C's path at tiny size", "arxiv": "0000.00000", "defaults": ["_defaults/tta_corruption"],
        "methods": [{"name": "source"}, {"name": "eata", "params": {"d_margin": 0.4}}, {"name": "sar"}],
        "settings": SETTINGS,
        "scales": {"tiny": {
            "datasets": ["imagenet_c"], "seeds": [0],
            # the full protocol (ResNet-50, published weights, CenterCrop only) on two corruptions of the fake tree
            "protocol": {"architecture": "resnet50", "source_weights": "published", "corruptions": ["gaussian_noise", "fog"],
                         "n_test": None, "fisher_samples": 4, "amp": False},
            "resources": {"mem_mb": 4000, "runtime": 30, "cpus_per_task": 2},  # 2 CPUs: one decoding worker
        }},
    }
    (configs / "tta" / f"{CARD}.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    proc = _snakemake(work, configs, root)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work, configs, root


def _snakemake(work: Path, configs: Path, root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # the jobs import this checkout
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores", "2", "--directory", str(work),
           "--config", f"configs={configs}", f"data_root={root}", "--", f"results/{CARD}/tiny/table.md"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1500, env=env)


def test_the_full_scale_path_gives_a_table_from_published_weights(full_tiny):
    work, _, _ = full_tiny
    table = (work / "results" / CARD / "tiny" / "table.md").read_text()
    assert "## Cells that did not run" not in table
    for label in ("source", "eata", "sar"):
        assert f"| {label} " in table
    records = [json.loads(p.read_text()) for p in (work / "results" / "cells" / "tiny" / "imagenet_c").rglob("seed0.json")]
    assert len(records) == 6 and all(r["status"] == "ok" for r in records), [r.get("reason") for r in records]
    for r in records:
        assert len(r["curves"]["error_pct"]) == 2 * 2  # 8 images per corruption in batches of 4, 2 corruptions
        assert r["source_clean_error_pct"] is None  # published weights, not trained here
    shifted = [r for r in records if r["setting"] == "label_shift_gn"]
    assert len(shifted) == 3 and all(r["config"]["setting"]["label_shift"] == 500000 for r in shifted)
    assert all("label_shift" not in r["config"]["setting"] for r in records if r["setting"] == "reset_bs4")
    builds = {p.parent.name.rsplit("-", 1)[0]: json.loads(p.read_text()) for p in (work / "results" / "_cache" / "tta" / "source").glob("*/build.json")}
    assert builds["imagenet_c-resnet50-bn"]["summary"]["weights"] == "resnet50_bn_torchvision_v1"
    assert builds["imagenet_c-resnet50-gn"]["summary"]["weights"] == "resnet50_gn_timm"  # GN settings get GN weights
    sar = next(r for r in shifted if r["method_registry"] == "tta/sar")
    assert sar["metrics"]["used_pct"] > 0  # SAR adapted the GN model on the label-shift stream


def test_a_staged_file_altered_afterwards_fails_its_build_in_one_line(full_tiny):
    work, configs, root = full_tiny
    staged = root / "models" / "resnet50_gn_timm.safetensors"
    with open(staged, "ab") as f:
        f.write(b"\0")  # a different size: the DAG sees the change and remakes what read it
    proc = _snakemake(work, configs, root)
    assert proc.returncode != 0
    log = next((work / "results" / "_cache" / "tta" / "logs").glob("source-imagenet_c-resnet50-gn-*.log")).read_text().strip()
    last = log.splitlines()[-1]
    assert "WeightsError" in last and f"{staged}: sha256 " in last and "recorded when it was staged; stage it again" in last, last
