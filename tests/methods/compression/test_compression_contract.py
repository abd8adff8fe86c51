"""Every registered compression method: a distillation loss gives a finite scalar with gradients
for the student (and the online teacher), the same for the same inputs; a pruner's next sparsity
lies in (current, target]."""
from __future__ import annotations

import math

import pytest
import torch

from methods import registry
from methods.compression.base import Batch, Distiller, Pruner

NAMES = registry.available("compression")


def test_the_family_has_every_method_of_the_issue():
    expected = {"ce", "kd", "reverse_kd", "kd_logit_mse", "dual_head_kd", "dkd", "dist", "pld", "dml", "bd_kd", "magnitude", "imp", "sap"}
    assert expected <= {n.split("/")[1] for n in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_method_contract(name):
    cls = registry.get(name)
    method = cls(cls.Params())
    if isinstance(method, Distiller):
        g = torch.Generator().manual_seed(1)
        s = torch.randn(8, 10, generator=g).requires_grad_(True)
        t = torch.randn(8, 10, generator=g).requires_grad_(method.ONLINE)
        aux = torch.randn(8, 10, generator=g).requires_grad_(True) if method.AUX_HEAD else None
        y = torch.randint(0, 10, (8,), generator=g)
        loss = method.loss(Batch(s, y, t, epoch=3, aux=aux))
        assert loss.dim() == 0 and math.isfinite(loss.item())
        loss.backward()
        assert s.grad is not None and torch.isfinite(s.grad).all()
        if method.ONLINE:
            assert t.grad is not None and t.grad.abs().sum() > 0
        assert method.loss(Batch(s.detach(), y, t.detach(), epoch=3, aux=None if aux is None else aux.detach())).item() == pytest.approx(loss.item())
    else:
        assert isinstance(method, Pruner)
        kept = torch.randn(1000, generator=torch.Generator().manual_seed(2))
        nxt = method.next_sparsity(0.2, 0.5, kept)
        assert 0.2 < nxt <= 0.5
