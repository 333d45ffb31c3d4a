"""Golden values for the KD loss (computed independently in numpy, hard-coded) and its validation."""

import math

import pytest
import torch

from soccerkd.errors import ConfigError, SoccerKDError
from soccerkd.kd import kd_loss

S = torch.tensor([[1.0, -0.5, 2.0, 0.0], [0.3, 0.2, -1.2, 1.5], [-2.0, 0.7, 0.1, 0.4]], dtype=torch.float64)
T = torch.tensor([[2.0, 0.0, 1.0, -1.0], [0.0, 1.0, -0.5, 2.5], [-1.0, 1.5, 0.5, 0.0]], dtype=torch.float64)
Y = torch.tensor([2, 3, 1])
CE = 0.6044524474591114

# (temperature, alpha, distill, total): distill = T²·mean_b Σ_k p_t log(p_t / p_s) from numpy.
GOLDEN = [
    (1.0, 0.5, 0.204116114281905, 0.4042842808705082),
    (4.0, 0.9, 0.2257120368948057, 0.2635860779512363),
    (2.5, 0.0, 0.22480231599939532, CE),
    (3.0, 1.0, 0.22545757118672938, 0.22545757118672938),
]


@pytest.mark.parametrize(("temperature", "alpha", "distill", "total"), GOLDEN)
def test_kd_loss_golden(temperature, alpha, distill, total):
    terms = kd_loss(S, T, Y, alpha=alpha, temperature=temperature)
    assert set(terms) == {"total", "task", "distill"}
    assert terms["task"].item() == pytest.approx(CE, abs=1e-6)
    assert terms["distill"].item() == pytest.approx(distill, abs=1e-6)
    assert terms["total"].item() == pytest.approx(total, abs=1e-6)


def test_kd_loss_by_hand_two_classes():
    # p_t = softmax([ln 3, 0]) = [3/4, 1/4], p_s = [1/2, 1/2]; KL = 3/4 ln(3/2) + 1/4 ln(1/2).
    s = torch.zeros(1, 2)
    t = torch.tensor([[math.log(3.0), 0.0]])
    terms = kd_loss(s, t, torch.tensor([0]), alpha=0.25, temperature=1.0)
    kl = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert terms["distill"].item() == pytest.approx(kl, abs=1e-6)
    assert terms["task"].item() == pytest.approx(math.log(2.0), abs=1e-6)
    assert terms["total"].item() == pytest.approx(0.25 * kl + 0.75 * math.log(2.0), abs=1e-6)


def test_identical_logits_have_zero_distill_and_gradients_skip_teacher():
    s = torch.randn(5, 4, requires_grad=True)
    t = s.detach().clone().requires_grad_(True)
    terms = kd_loss(s, t, torch.zeros(5, dtype=torch.long), alpha=0.7, temperature=3.0)
    assert terms["distill"].item() == pytest.approx(0.0, abs=1e-6)
    terms["total"].backward()
    assert s.grad is not None and t.grad is None


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan"), True])
def test_bad_alpha_is_named(alpha):
    with pytest.raises(ConfigError, match="alpha") as info:
        kd_loss(S, T, Y, alpha=alpha, temperature=2.0)
    assert repr(alpha) in str(info.value)
    assert isinstance(info.value, SoccerKDError)


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("inf")])
def test_bad_temperature_is_named(temperature):
    with pytest.raises(ConfigError, match=f"temperature.*{temperature!r}"):
        kd_loss(S, T, Y, alpha=0.5, temperature=temperature)


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="B×K"):
        kd_loss(S, T[:, :3], Y, alpha=0.5, temperature=2.0)


def _upstream_loss_fn_kd(outputs, labels, teacher_outputs, alpha, temperature):
    """haitongli's ``net.loss_fn_kd`` as SoccerKDNet imported it (nn.KLDivLoss() default 'mean')."""
    import torch.nn as nn
    import torch.nn.functional as F

    return nn.KLDivLoss()(F.log_softmax(outputs / temperature, dim=1),
                          F.softmax(teacher_outputs / temperature, dim=1)) * (alpha * temperature * temperature) + \
        F.cross_entropy(outputs, labels) * (1.0 - alpha)


@pytest.mark.parametrize(("temperature", "alpha"), [(6.0, 0.95), (4.0, 0.9), (1.0, 0.5)])
def test_mean_reduction_equals_upstream_loss(temperature, alpha):
    ours = kd_loss(S, T, Y, alpha=alpha, temperature=temperature, reduction="mean")
    assert ours["total"].item() == pytest.approx(_upstream_loss_fn_kd(S, Y, T, alpha, temperature).item(), abs=1e-6)
    batchmean = kd_loss(S, T, Y, alpha=alpha, temperature=temperature)
    assert batchmean["distill"].item() == pytest.approx(4 * ours["distill"].item(), abs=1e-6)


def test_batchmean_alpha_gives_the_upstream_weighting_up_to_scale():
    from soccerkd.kd.loss import batchmean_alpha

    a2 = batchmean_alpha(0.95, 4)
    assert a2 == pytest.approx(4.75 / 5.75)
    up = kd_loss(S, T, Y, alpha=0.95, temperature=6.0, reduction="mean")["total"].item()
    ours = kd_loss(S, T, Y, alpha=a2, temperature=6.0)["total"].item()
    assert ours * (1 - 0.95) / (1 - a2) == pytest.approx(up, abs=1e-6)
    with pytest.raises(ConfigError, match="'sum'"):
        kd_loss(S, T, Y, alpha=0.5, temperature=2.0, reduction="sum")
