"""Every registered TTA method survives a checkpoint: the adaptation loop saves the method's
state_dict() (model, optimizer, reset snapshot, running state: data only, loaded back with
weights_only=True), and a method built afresh from the same source model and given that state
goes on exactly as the original."""
import pytest
import torch
from tta_models import build_cnn, build_images

from entrobench.checkpoint import Checkpoint
from methods.registry import available, get

# Filters opened up (as in the contract test) so every adapting method updates the tiny random model.
LET_THROUGH = {"tta/eata": {"d_margin": 1.01}, "tta/sar": {"reset_constant": 0.0}, "tta/deyo": {"plpd_threshold": -1.0}}


def build(name: str, norm: str, in_ch: int, size: int, prepare_seed: int = 0):
    cls = get(name)
    params = {"lr": 0.01} if "lr" in cls.Params.__dataclass_fields__ else {}
    method = cls(build_cnn(norm, in_ch=in_ch, size=size), cls.Params(**params, **LET_THROUGH.get(name, {})), n_classes=10)
    torch.manual_seed(prepare_seed)
    method.prepare(build_images(16, in_ch, size))
    return method


@pytest.mark.parametrize("norm,in_ch,size", [("bn", 1, 28), ("gn", 3, 32)])
@pytest.mark.parametrize("name", available("tta"))
def test_resumed_method_continues_bitwise(tmp_path, name, norm, in_ch, size):
    method = build(name, norm, in_ch, size)
    for bs in (8, 1):
        method.adapt(build_images(bs, in_ch, size))
    Checkpoint(tmp_path / "m.ckpt").save(1, {"method": method.state_dict()})
    after = [method.adapt(build_images(8, in_ch, size)) for _ in range(3)]
    method.reset()
    after.append(method.adapt(build_images(8, in_ch, size)))

    resumed = build(name, norm, in_ch, size, prepare_seed=123)  # prepared on other images: its running state must come back
    resumed.load_state_dict(Checkpoint(tmp_path / "m.ckpt").load()["method"])  # load() brings back the RNG too
    again = [resumed.adapt(build_images(8, in_ch, size)) for _ in range(3)]
    resumed.reset()  # the snapshot reset() returns to came back with it
    again.append(resumed.adapt(build_images(8, in_ch, size)))
    assert all(torch.equal(a, b) for a, b in zip(after, again))


def test_state_that_a_checkpoint_cannot_hold_is_refused_by_name():
    method = build("tta/tent", "bn", 1, 28)
    method.lookup = {1: "a"}  # a dict with a non-string key: not data a weights_only load rebuilds
    with pytest.raises(TypeError, match=r"Tent\.lookup holds a dict"):
        method.state_dict()
