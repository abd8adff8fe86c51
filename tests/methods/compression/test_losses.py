"""Each distillation loss on fixed logits against values worked out by hand (the comments show
the arithmetic): KL direction, temperature, T^2, DKD's decomposition, DIST's correlations, PLD's
list likelihood, and the online losses' gradients."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from methods.compression.base import (
    Batch,
    binary_kl,
    binary_kl_norm,
    forward_kl,
    logit_mse,
    reverse_kl,
)
from methods.compression.bd_kd import BDKD
from methods.compression.ce import CEOnly
from methods.compression.dist import DIST
from methods.compression.dkd import DKD, decoupled_terms
from methods.compression.dml import DML
from methods.compression.dual_head_kd import DualHeadKD
from methods.compression.kd import HintonKD
from methods.compression.kd_logit_mse import KDLogitMSE
from methods.compression.pld import PLD, teacher_optimal_permutation
from methods.compression.reverse_kd import ReverseKD

LN3 = math.log(3.0)
STUDENT = torch.tensor([[0.0, 0.0]])  # p_s = (1/2, 1/2)
TEACHER = torch.tensor([[LN3, 0.0]])  # p_t = (3/4, 1/4)
LABEL = torch.tensor([0])
# KL(p_t || p_s) = 3/4 ln(3/2) + 1/4 ln(1/2);  KL(p_s || p_t) = 1/2 ln(2/3) + 1/2 ln 2
FORWARD = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)  # 0.130812
REVERSE = 0.5 * math.log(2 / 3) + 0.5 * math.log(2.0)  # 0.143841


def test_forward_kl_takes_the_expectation_under_the_teacher():
    assert forward_kl(STUDENT, TEACHER, 1.0).item() == pytest.approx(FORWARD, abs=1e-6)


def test_reverse_kl_takes_the_expectation_under_the_student():
    assert reverse_kl(STUDENT, TEACHER, 1.0).item() == pytest.approx(REVERSE, abs=1e-6)
    assert FORWARD != pytest.approx(REVERSE, abs=1e-3)  # the two directions differ here


def test_temperature_softens_both_sides_and_t_squared_scales_the_kl():
    # at T = 2 the teacher (2 ln 3, 0) has the same softmax as (ln 3, 0) at T = 1: KL x 2^2
    assert forward_kl(STUDENT, 2 * TEACHER, 2.0).item() == pytest.approx(4 * FORWARD, abs=1e-6)


def test_hinton_kd_weights_ce_by_ce_weight_and_the_kl_by_kd_weight():
    kd = HintonKD(HintonKD.Params(temperature=2.0, ce_weight=0.1, kd_weight=0.9))
    loss = kd.loss(Batch(STUDENT, LABEL, 2 * TEACHER))
    assert loss.item() == pytest.approx(0.1 * math.log(2) + 0.9 * 4 * FORWARD, abs=1e-6)  # CE(uniform, 2 classes) = ln 2


def test_reverse_kd_is_kd_with_the_divergence_reversed():
    rkd = ReverseKD(ReverseKD.Params(temperature=1.0, ce_weight=0.0, kd_weight=1.0))
    assert rkd.loss(Batch(STUDENT, LABEL, TEACHER)).item() == pytest.approx(REVERSE, abs=1e-6)


def test_ce_only_ignores_the_teacher():
    assert CEOnly().loss(Batch(STUDENT, LABEL, TEACHER)).item() == pytest.approx(math.log(2), abs=1e-6)


def test_kd_plus_logit_mse_adds_the_mean_squared_logit_gap():
    m = KDLogitMSE(KDLogitMSE.Params(temperature=1.0, ce_weight=0.0, kd_weight=1.0, logit_weight=1.0))
    # (ln 3 - 0)^2 / 2 classes
    assert m.loss(Batch(STUDENT, LABEL, TEACHER)).item() == pytest.approx(FORWARD + LN3**2 / 2, abs=1e-6)
    assert logit_mse(STUDENT, TEACHER).item() == pytest.approx(LN3**2 / 2, abs=1e-6)


def test_binary_kls_vanish_when_the_logits_agree_and_binary_kl_matches_by_hand():
    z = torch.tensor([[1.5, -2.0, 0.3]])
    assert binary_kl(z, z).item() == pytest.approx(0.0, abs=1e-7)
    assert binary_kl_norm(z, z).item() == pytest.approx(0.0, abs=1e-7)
    # one class, T = 1: teacher sigmoid(ln 3) = 3/4, student sigmoid(0) = 1/2 -> KL(Bern(3/4) || Bern(1/2)) = FORWARD
    assert binary_kl(torch.zeros(1, 1), torch.full((1, 1), LN3), 1.0).item() == pytest.approx(FORWARD, abs=1e-6)


def test_dual_head_puts_the_logit_loss_on_the_auxiliary_head_only():
    m = DualHeadKD(DualHeadKD.Params(temperature=1.0, ce_weight=1.0, kd_weight=0.0, logit_loss="mse", logit_weight=1.0))
    main = torch.zeros(1, 2, requires_grad=True)
    aux = torch.zeros(1, 2, requires_grad=True)
    loss = m.loss(Batch(main, LABEL, TEACHER, aux=aux))
    assert loss.item() == pytest.approx(math.log(2) + LN3**2 / 2, abs=1e-6)
    loss.backward()
    # main head: only CE's gradient softmax - onehot = (-1/2, 1/2); aux: d/dz mean((z - t)^2) = (z - t)
    assert torch.allclose(main.grad, torch.tensor([[-0.5, 0.5]]), atol=1e-6)
    assert torch.allclose(aux.grad, torch.tensor([[-LN3, 0.0]]), atol=1e-6)
    with pytest.raises(ValueError, match="Batch.aux"):
        m.loss(Batch(main, LABEL, TEACHER))


# DKD on 3 classes, T = 1, label 0: teacher p = (.4, .4, .2), student uniform.
DKD_TEACHER = torch.tensor([[math.log(2.0), math.log(2.0), 0.0]])
DKD_STUDENT = torch.zeros(1, 3)
TCKD = 0.4 * math.log(0.4 / (1 / 3)) + 0.6 * math.log(0.6 / (2 / 3))  # binary (.4, .6) vs (1/3, 2/3): 0.009712
NCKD = (2 / 3) * math.log((2 / 3) / 0.5) + (1 / 3) * math.log((1 / 3) / 0.5)  # (2/3, 1/3) vs (1/2, 1/2): 0.056633
KD = 2 * 0.4 * math.log(0.4 * 3) + 0.2 * math.log(0.2 * 3)  # 0.043692


def test_dkd_terms_match_the_hand_computed_tckd_and_nckd():
    tckd, nckd, p_target = decoupled_terms(DKD_STUDENT, DKD_TEACHER, LABEL, 1.0)
    assert tckd.item() == pytest.approx(TCKD, abs=1e-6)
    assert nckd.item() == pytest.approx(NCKD, abs=1e-6)
    assert p_target.item() == pytest.approx(0.4, abs=1e-6)


def test_dkd_decomposition_sums_to_the_kd_loss():
    # KD = TCKD + (1 - p_t) NCKD (DKD Eq. 1): by hand, and on random logits at T = 4
    assert TCKD + 0.6 * NCKD == pytest.approx(KD, abs=1e-9)
    g = torch.Generator().manual_seed(0)
    s, t, y = torch.randn(16, 10, generator=g) * 3, torch.randn(16, 10, generator=g) * 3, torch.randint(0, 10, (16,), generator=g)
    tckd, nckd, p_target = decoupled_terms(s, t, y, 4.0)
    assert torch.allclose(4.0**2 * (tckd + (1 - p_target) * nckd).mean(), forward_kl(s, t, 4.0), atol=1e-5)


def test_dkd_loss_at_alpha_beta_one_is_tckd_plus_nckd_and_ramps_with_warmup():
    dkd = DKD(DKD.Params(ce_weight=0.0, alpha=1.0, beta=1.0, temperature=1.0, warmup=4))
    full = dkd.loss(Batch(DKD_STUDENT, LABEL, DKD_TEACHER, epoch=4)).item()
    assert full == pytest.approx(TCKD + NCKD, abs=1e-6)  # alpha = beta = 1 frees NCKD from (1 - p_t)
    assert dkd.loss(Batch(DKD_STUDENT, LABEL, DKD_TEACHER, epoch=1)).item() == pytest.approx(full / 4, abs=1e-7)


def test_dist_is_zero_for_matching_predictions_and_four_for_opposite_ones():
    dist = DIST(DIST.Params(ce_weight=0.0, beta=1.0, gamma=1.0, tau=1.0))
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert dist.loss(Batch(z, torch.tensor([0, 1]), z)).item() == pytest.approx(0.0, abs=1e-6)
    # every row and every column of the two probability matrices is perfectly anti-correlated:
    # inter = intra = 1 - (-1) = 2
    assert dist.loss(Batch(z, torch.tensor([0, 1]), z.flip(1))).item() == pytest.approx(4.0, abs=1e-6)


def test_pld_teacher_optimal_permutation_and_hand_computed_value():
    teacher, label = torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([1])
    assert teacher_optimal_permutation(teacher, label).tolist() == [[1, 0, 2]]
    q = F.softmax(teacher, dim=1)[0]
    # uniform student: choice k among the C - k + 1 classes left costs ln(C - k + 1): ln 3, ln 2, 0
    expected = q[1].item() * math.log(3) + q[0].item() * math.log(2)
    pld = PLD(PLD.Params(tau=1.0))
    assert pld.loss(Batch(torch.zeros(1, 3), label, teacher)).item() == pytest.approx(expected, abs=1e-6)
    s = torch.tensor([[0.3, -1.0, 2.0]])
    assert pld.loss(Batch(s + 5.0, label, teacher)).item() == pytest.approx(pld.loss(Batch(s, label, teacher)).item(), abs=1e-5)


def test_dml_gives_each_network_its_own_loss_and_gradient():
    s = STUDENT.clone().requires_grad_(True)
    t = TEACHER.clone().requires_grad_(True)
    loss = DML().loss(Batch(s, LABEL, t))
    ce_t = -math.log(0.75)
    assert loss.item() == pytest.approx(math.log(2) + FORWARD + ce_t + REVERSE, abs=1e-6)
    loss.backward()
    # teacher's gradient: CE_t + KL(p_s || p_t) with p_s fixed -> 2 p_t - onehot - p_s = (0, 0)
    assert torch.allclose(t.grad, torch.tensor([[0.0, 0.0]]), atol=1e-6)
    # student's: CE_s + KL(p_t || p_s) with p_t fixed -> 2 p_s - onehot - p_t = (-3/4, 3/4)
    assert torch.allclose(s.grad, torch.tensor([[-0.75, 0.75]]), atol=1e-6)


def test_bd_kd_favours_reverse_kl_when_the_student_is_less_confident():
    # student uniform (entropy ln 2) is less confident than the teacher: reverse KL gets boost 2
    loss = BDKD(BDKD.Params(boost=2.0, teacher_weight=1.0, temperature=1.0)).loss(Batch(STUDENT, LABEL, TEACHER))
    ce_s, ce_t = math.log(2), -math.log(0.75)
    assert loss.item() == pytest.approx(ce_s + FORWARD + 2 * REVERSE + ce_t + FORWARD, abs=1e-6)
    # swapped roles (the student sharper than the teacher): forward KL gets the boost
    swapped = BDKD(BDKD.Params(boost=2.0, teacher_weight=0.0, temperature=1.0)).loss(Batch(TEACHER, LABEL, STUDENT))
    assert swapped.item() == pytest.approx(-math.log(0.75) + 2 * REVERSE + FORWARD + math.log(2), abs=1e-6)


def test_bad_parameters_fail_with_the_parameter_named():
    with pytest.raises(ValueError, match="temperature"):
        HintonKD.Params(temperature=0.0)
    with pytest.raises(ValueError, match="logit_loss"):
        KDLogitMSE.Params(logit_loss="l1")
    with pytest.raises(ValueError, match="warmup"):
        DKD.Params(warmup=0)
