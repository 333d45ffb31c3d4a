"""The Hinton knowledge-distillation loss, returning its named terms. Pure: tensors in, tensors out.

Weighting (as in SoccerKDNet / Hinton et al. 2015)::

    distill = T² · KL( softmax(t/T) ‖ softmax(s/T) )      summed over classes, mean over the batch
    task    = mean cross-entropy of s against the integer targets
    total   = α · distill + (1 − α) · task

The T² factor keeps the distillation gradients' scale independent of T.

``reduction`` says how the KL is averaged:

* ``"batchmean"`` (default): the true KL per sample, summed over the K classes, mean over the batch;
* ``"mean"``: ``nn.KLDivLoss()``'s default element mean over batch × classes, which is what the
  upstream SoccerKDNet code (haitongli's ``loss_fn_kd``) used. It is exactly ``batchmean / K``.

So an upstream (α, T) with ``mean`` is the same loss as ``reduction="mean"`` here, bit for bit. With
``batchmean`` the same optimum needs α' with ``α'/(1−α') = α/(K·(1−α))``, and the whole loss is then
``(1−α)/(1−α')`` times the upstream one (a learning-rate factor). For the template α = 0.95 and
K = 4: α' = 4.75/5.75 ≈ 0.826, loss scale ≈ 0.29. ``tests/unit/kd/test_kd_loss.py`` checks both.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from soccerkd.errors import ConfigError


KLReduction = Literal["batchmean", "mean"]
KL_REDUCTIONS = ("batchmean", "mean")


def batchmean_alpha(alpha: float, num_classes: int) -> float:
    """The ``batchmean`` α that weighs KL against CE as the upstream element-``mean`` ``alpha`` does."""
    validate_kd_params(alpha=alpha, temperature=1.0)
    if alpha >= 1.0:
        return 1.0
    ratio = alpha / (num_classes * (1.0 - alpha))
    return ratio / (1.0 + ratio)


def validate_kd_params(*, alpha: float, temperature: float, reduction: str = "batchmean") -> None:
    """:class:`ConfigError` naming the bad value unless 0 ≤ alpha ≤ 1, temperature > 0 (finite) and
    ``reduction`` is ``batchmean`` or ``mean``."""
    if reduction not in KL_REDUCTIONS:
        raise ConfigError(f"kl_reduction must be one of {KL_REDUCTIONS}, got {reduction!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must be a number in [0, 1], got {alpha!r}")
    if (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
            or not math.isfinite(temperature) or temperature <= 0):
        raise ConfigError(f"temperature must be a finite number > 0, got {temperature!r}")


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, target: torch.Tensor, *,
            alpha: float, temperature: float, reduction: KLReduction = "batchmean") -> dict[str, torch.Tensor]:
    """``{"total", "task", "distill"}`` scalar tensors for a batch (see the module docstring).

    ``student_logits`` and ``teacher_logits`` are ``B×K``; ``target`` holds ``B`` class indices.
    No gradient flows into ``teacher_logits``. Computed in fp32 whatever the input dtype.
    """
    validate_kd_params(alpha=alpha, temperature=temperature, reduction=reduction)
    if student_logits.dim() != 2 or student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student and teacher logits must both be B×K, got {tuple(student_logits.shape)} "
                         f"and {tuple(teacher_logits.shape)}")
    if target.shape != student_logits.shape[:1]:
        raise ValueError(f"target must hold {student_logits.shape[0]} class indices, got shape {tuple(target.shape)}")
    s = student_logits.float()
    t = teacher_logits.detach().float()
    task = F.cross_entropy(s, target)
    distill = F.kl_div(F.log_softmax(s / temperature, dim=1), F.log_softmax(t / temperature, dim=1),
                       reduction="batchmean", log_target=True) * (temperature ** 2)
    if reduction == "mean":
        distill = distill / s.shape[1]
    total = alpha * distill + (1.0 - alpha) * task
    return {"total": total, "task": task, "distill": distill}
