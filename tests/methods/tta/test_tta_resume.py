"""Every registered TTA method survives a checkpoint: the adaptation loop saves the method object
itself (model, optimizer, running state), and the resumed method goes on exactly as the original."""
import pytest
import torch

from entrobench.checkpoint import Checkpoint
from methods.registry import available, get
from tta_models import build_cnn, build_images

# Filters opened up (as in the contract test) so every adapting method updates the tiny random model.
LET_THROUGH = {"tta/eata": {"d_margin": 1.01}, "tta/sar": {"reset_constant": 0.0}, "tta/deyo": {"plpd_threshold": -1.0}}


@pytest.mark.parametrize("norm,in_ch,size", [("bn", 1, 28), ("gn", 3, 32)])
@pytest.mark.parametrize("name", available("tta"))
def test_resumed_method_continues_bitwise(tmp_path, name, norm, in_ch, size):
    torch.manual_seed(0)
    cls = get(name)
    params = {"lr": 0.01} if "lr" in cls.Params.__dataclass_fields__ else {}
    method = cls(build_cnn(norm, in_ch=in_ch, size=size), cls.Params(**params, **LET_THROUGH.get(name, {})), n_classes=10)
    method.prepare(build_images(16, in_ch, size))
    for bs in (8, 1):
        method.adapt(build_images(bs, in_ch, size))
    Checkpoint(tmp_path / "m.ckpt").save(1, {"method": method})
    after = [method.adapt(build_images(8, in_ch, size)) for _ in range(3)]
    method.reset()
    after.append(method.adapt(build_images(8, in_ch, size)))

    torch.manual_seed(123)  # load() must bring back the RNG too
    resumed = Checkpoint(tmp_path / "m.ckpt").load()["method"]
    again = [resumed.adapt(build_images(8, in_ch, size)) for _ in range(3)]
    resumed.reset()  # the snapshot reset() returns to came back with it
    again.append(resumed.adapt(build_images(8, in_ch, size)))
    assert all(torch.equal(a, b) for a, b in zip(after, again))
