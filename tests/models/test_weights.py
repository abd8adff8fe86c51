"""Published source weights, in each real format and key layout (random values, written here),
staged from a local URL and loaded through the same code a cluster job runs: stage() converts
the pickle to safetensors once, load_source_model() checks and loads it."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from entrobench.models import zoo
from entrobench.stage import weights_item, stage


def _random_state(arch: str, norm: str, n_classes: int) -> dict[str, torch.Tensor]:
    """The model's own keys, shapes and dtypes (those of the published files), random values."""
    g = torch.Generator().manual_seed(0)
    with torch.device("meta"):
        meta = zoo.build_model(arch, norm, n_classes, 3).state_dict()
    return {
        k: torch.randint(0, 100, v.shape, generator=g, dtype=v.dtype) if not v.is_floating_point()
        else torch.rand(v.shape, generator=g, dtype=v.dtype) * 0.1 + (0.9 if k.endswith("running_var") else 0.0)
        for k, v in meta.items()
    }


def _published_file(tmp_path, w: zoo.PublishedWeights) -> tuple[str, dict[str, torch.Tensor]]:
    """Write weights `w` as its publisher ships it; returns (file:// URL, the state dict)."""
    state = _random_state(w.arch, w.norm, w.n_classes)
    path = tmp_path / "published" / w.download
    path.parent.mkdir(parents=True, exist_ok=True)
    if w.layout == "robustbench":
        # RobustBench's Standard.pt: a training checkpoint, DataParallel's "module." keys, metadata beside
        # them, saved in torch's legacy (pre-1.6, non-zip) format
        checkpoint = {"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 200, "best_prec1": np.float64(94.78)}
        torch.save(checkpoint, path, _use_new_zipfile_serialization=False)
    else:
        torch.save(state, path)  # torchvision's and timm's files: a plain state dict
    return path.as_uri(), state


def _stage(tmp_path, weights: zoo.PublishedWeights, pin: bool):
    url, state = _published_file(tmp_path, weights)
    sha = hashlib.sha256(Path(url.removeprefix("file://")).read_bytes()).hexdigest()
    weights = dataclasses.replace(weights, url=url, checksum=f"sha256:{sha}" if pin else "")
    root = tmp_path / "data"
    (outcome,) = stage([weights_item(weights)], root, log=lambda m: None)
    return root, state, outcome, sha


REAL = ["resnet50_bn_torchvision_v1", "resnet50_gn_timm", "wrn28_10_robustbench_standard"]


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """Each real format staged once (about 350 MB of pickles): name -> (data root, state, outcome, sha256)."""
    out = {}
    for name in REAL:
        w = zoo.PUBLISHED[name]
        out[name] = _stage(tmp_path_factory.mktemp(name), w, pin=w.checksum != "")
    return out


@pytest.mark.parametrize("name", REAL)
def test_published_weights_stage_to_safetensors_and_load_into_the_model(staged, name):
    root, state, outcome, sha = staged[name]
    assert outcome.status == "staged", outcome.message
    assert outcome.path == root / "models" / f"{name}.safetensors"
    meta = json.loads((root / "models" / f"{name}.json").read_text())
    assert meta["source_sha256"] == sha and meta["name"] == name
    assert not any((root / "_downloads").iterdir())  # the pickle is gone once converted
    model = zoo.load_source_model(root, name)
    w = zoo.PUBLISHED[name]
    loaded = model.state_dict()
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)
    with torch.no_grad():
        out = model(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, w.n_classes) and torch.isfinite(out).all()


def test_a_setting_with_groupnorm_gets_groupnorm_weights():
    assert zoo.published_weights("resnet50", "gn").name == "resnet50_gn_timm"
    assert zoo.published_weights("resnet50", "bn").url.endswith("resnet50-0676ba61.pth")  # V1, not V2 (11ad3fa6)
    with pytest.raises(zoo.WeightsError, match=r"no published weights for small_cnn with norm 'bn' \(known: resnet50/bn, resnet50/gn, wrn28_10/bn\)"):
        zoo.published_weights("small_cnn", "bn")


# The failure cases run the same code on the small CNN's weights (0.5 MB, not 100 MB).
SMALL = {norm: zoo.PublishedWeights(f"small_{norm}", "small_cnn", norm, 10, "", f"small_{norm}.pth", "", "state_dict", "a test")
         for norm in ("bn", "gn")}


@pytest.fixture
def small_published(monkeypatch):
    monkeypatch.setattr(zoo, "PUBLISHED", {**zoo.PUBLISHED, **{w.name: w for w in SMALL.values()}})


def test_a_staged_file_changed_since_is_one_clear_line(tmp_path, small_published):
    root, _, outcome, _ = _stage(tmp_path, SMALL["bn"], pin=True)
    zoo.load_weights(root, "small_bn")  # intact: loads
    with open(outcome.path, "r+b") as f:  # flip one byte of a tensor near the end
        f.seek(-10, 2)
        byte = f.read(1)
        f.seek(-10, 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(zoo.WeightsError) as err:
        zoo.load_weights(root, "small_bn")
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{outcome.path}: sha256 ")
    assert message.endswith("recorded when it was staged; stage it again")


def test_bn_weights_in_place_of_gn_weights_are_refused_when_staging(tmp_path, small_published):
    # the mistake of issue 17 (BatchNorm ResNet-50 weights for the GroupNorm setting), on the small CNN
    url, _ = _published_file(tmp_path, SMALL["bn"])
    weights = dataclasses.replace(SMALL["gn"], url=url, download=SMALL["bn"].download)
    (outcome,) = stage([weights_item(weights)], tmp_path / "data", log=lambda m: None)
    assert outcome.status == "failed" and "\n" not in outcome.message
    assert outcome.message.endswith(
        "small_bn.pth: not small_cnn/gn weights (0 keys missing, e.g. []; 9 unexpected, "
        "e.g. ['norm1.num_batches_tracked', 'norm1.running_mean'])"
    )


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "payload": Exploit()}, path)
    with pytest.raises(zoo.WeightsError, match=r"evil\.pth: not a checkpoint torch\.load\(weights_only=True\) can read"):
        zoo.read_checkpoint(path, "robustbench")


def test_weights_not_staged_say_how_to_stage_them(tmp_path):
    with pytest.raises(zoo.WeightsError, match=r"resnet50_gn_timm\.safetensors: not staged \(run `python -m entrobench\.stage resnet50_gn_timm --data-root"):
        zoo.load_weights(tmp_path, "resnet50_gn_timm")
