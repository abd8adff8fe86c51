"""A training loop killed after an epoch resumes from its checkpoint to the same weights, bitwise."""
from __future__ import annotations

import pytest
import torch

from entrobench.protocols.compression.models import build
from entrobench.protocols.compression.train import Recipe, cross_entropy_step, fit


class Killed(Exception):
    pass


def train(ckpt, log, kill_at=None):
    torch.manual_seed(0)
    model = build("cnn_student", 10, 1)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(96, 1, 8, 8, generator=g), torch.randint(0, 10, (96,), generator=g)

    def after_epoch(epoch, loss):
        log.setdefault("loss", []).append(loss)
        if epoch == kill_at:
            raise Killed

    fit([model], cross_entropy_step(model), x, y, Recipe(epochs=3, batch_size=32, augment=True), torch.Generator().manual_seed(1),
        after_epoch=after_epoch, checkpoint_path=ckpt, log=log)
    return model


def test_a_killed_loop_resumes_to_the_same_weights(tmp_path):
    whole_log = {}
    whole = train(None, whole_log)
    ckpt, log = tmp_path / ".cell.ckpt", {}
    with pytest.raises(Killed):
        train(ckpt, log, kill_at=2)
    assert ckpt.is_file()
    log = {}
    resumed = train(ckpt, log)
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()))
    assert log == whole_log  # the epoch-1 entry came back from the checkpoint
    assert not ckpt.exists()  # discarded once the loop finished
