import copy
import math

import pytest
import torch
import torch.nn.functional as F

from methods.tta.base import norm_affine_params
from methods.tta.deyo import DeYO, shuffle_patches
from tta_models import build_cnn, build_images

C = 10


def _patches(x: torch.Tensor, grid: int) -> list[tuple]:
    b, ch, h, w = x.shape
    ph, pw = h // grid, w // grid
    return sorted(tuple(x[0, :, i * ph : (i + 1) * ph, j * pw : (j + 1) * pw].flatten().tolist()) for i in range(grid) for j in range(grid))


def test_shuffle_patches_permutes_whole_patches():
    torch.manual_seed(0)
    x = torch.arange(64.0).reshape(1, 1, 8, 8)
    y = shuffle_patches(x, 4)
    assert y.shape == x.shape and not torch.equal(x, y)
    assert _patches(x, 4) == _patches(y, 4)
    constant = torch.full((2, 3, 8, 8), 0.3)
    assert torch.equal(shuffle_patches(constant, 4), constant)


@pytest.mark.parametrize("size", [28, 30, 32])
def test_shuffle_patches_keeps_the_image_size(size):
    assert shuffle_patches(torch.rand(2, 3, size, size), 4).shape == (2, 3, size, size)
    with pytest.raises(ValueError, match="patch_len"):
        shuffle_patches(torch.rand(1, 1, 3, 3), 4)


def test_deyo_plpd_filter_and_update_match_hand_computation():
    model = build_cnn("gn", logit_scale=3.0)
    reference = copy.deepcopy(model)
    x = build_images(16)
    logits = reference(x)
    p = logits.softmax(1)
    entropy = -(p * p.log()).sum(1)
    y_hat = p.argmax(1)
    torch.manual_seed(7)
    with torch.no_grad():
        p_shuffled = reference(shuffle_patches(x, 4)).softmax(1)
    plpd = (p.detach() - p_shuffled).gather(1, y_hat[:, None]).squeeze(1)
    threshold = plpd.median().item()
    kept = plpd > threshold
    assert 0 < kept.sum() < len(x)
    e0 = 0.4 * math.log(C)
    weight = torch.exp(e0 - entropy[kept].detach()) + torch.exp(plpd[kept])  # Eq. 10
    grads = torch.autograd.grad((weight * entropy[kept]).mean(), norm_affine_params(reference))

    lr = 0.1
    params = DeYO.Params(deyo_margin_frac=2.0, plpd_threshold=threshold, lr=lr, momentum=0.0)  # entropy filter off
    method = DeYO(model, params, n_classes=C)
    torch.manual_seed(7)
    method.adapt(x)
    s = method.last_stats
    assert s["plpd_mean"] == pytest.approx(plpd.mean().item(), abs=1e-6)
    assert s["used_frac"] == kept.float().mean().item() and s["backward_passes"] == 1
    for q, q0, g in zip(norm_affine_params(model), norm_affine_params(reference), grads):
        assert torch.allclose(q, q0 - lr * g, atol=1e-6)


def test_deyo_drops_images_whose_shuffle_changes_nothing():
    # Shuffling a constant image returns it unchanged: PLPD is 0, below any positive threshold.
    method = DeYO(build_cnn("gn"), DeYO.Params(deyo_margin_frac=2.0, plpd_threshold=1e-6), n_classes=C)
    x = torch.linspace(0, 1, 6).reshape(6, 1, 1, 1).expand(6, 1, 28, 28).contiguous()
    method.adapt(x)
    s = method.last_stats
    assert s["reliable_frac"] == 1.0 and abs(s["plpd_mean"]) < 1e-6
    assert s["used_frac"] == 0.0 and s["backward_passes"] == 0


def test_deyo_entropy_filter_drops_uncertain_samples():
    method = DeYO(build_cnn("gn", logit_scale=0.01), DeYO.Params(plpd_threshold=-2.0), n_classes=C)  # near-uniform predictions
    method.adapt(build_images(8))
    assert method.last_stats["reliable_frac"] == 0.0 and method.last_stats["backward_passes"] == 0


@pytest.mark.parametrize("antialias", [False, True])
def test_shuffle_patches_resizes_down_to_a_multiple_and_back_with_the_antialias_flag(antialias):
    x = torch.rand(2, 3, 30, 30)  # 30 = 4 x 7 + 2: resized to 28, shuffled, resized back
    torch.manual_seed(3)
    got = shuffle_patches(x, 4, antialias)
    resize = dict(mode="bilinear", align_corners=False, antialias=antialias)
    torch.manual_seed(3)
    expected = F.interpolate(shuffle_patches(F.interpolate(x, size=(28, 28), **resize), 4), size=(30, 30), **resize)
    assert torch.allclose(got, expected, atol=1e-6)
    torch.manual_seed(3)
    assert not torch.allclose(shuffle_patches(x, 4, not antialias), got, atol=1e-3)  # the flag matters on noise


def test_shuffle_patches_resize_is_torchvisions_tensor_resize():
    transforms = pytest.importorskip("torchvision.transforms", reason="torchvision is not installed beside this torch")
    x = torch.rand(2, 3, 30, 30)
    for antialias in (False, True):
        resize = dict(mode="bilinear", align_corners=False, antialias=antialias)
        ours = F.interpolate(x, size=(28, 28), **resize)
        theirs = transforms.Resize((28, 28), antialias=antialias)(x)  # DeYO's resize_t
        assert torch.allclose(ours, theirs, atol=1e-6)
