"""The Hinton knowledge-distillation loss, returning its named terms. Pure: tensors in, tensors out.

Weighting (as in SoccerKDNet / Hinton et al. 2015)::

    distill = T² · KL( softmax(t/T) ‖ softmax(s/T) )      summed over classes, mean over the batch
    task    = mean cross-entropy of s against the integer targets
    total   = α · distill + (1 − α) · task

The T² factor keeps the distillation gradients' scale independent of T. We use ``batchmean`` (the
true KL per sample); the upstream code used ``nn.KLDivLoss()``'s default element mean, which is the
same loss divided by the number of classes (so its α is not directly comparable).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from soccerkd.errors import ConfigError


def validate_kd_params(*, alpha: float, temperature: float) -> None:
    """:class:`ConfigError` naming the bad value unless 0 ≤ alpha ≤ 1 and temperature > 0 (finite)."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must be a number in [0, 1], got {alpha!r}")
    if (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
            or not math.isfinite(temperature) or temperature <= 0):
        raise ConfigError(f"temperature must be a finite number > 0, got {temperature!r}")


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, target: torch.Tensor, *,
            alpha: float, temperature: float) -> dict[str, torch.Tensor]:
    """``{"total", "task", "distill"}`` scalar tensors for a batch (see the module docstring).

    ``student_logits`` and ``teacher_logits`` are ``B×K``; ``target`` holds ``B`` class indices.
    No gradient flows into ``teacher_logits``. Computed in fp32 whatever the input dtype.
    """
    validate_kd_params(alpha=alpha, temperature=temperature)
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
    total = alpha * distill + (1.0 - alpha) * task
    return {"total": total, "task": task, "distill": distill}
