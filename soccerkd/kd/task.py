"""One training step's forward for teacher fine-tuning, a student baseline or distillation.

:class:`DistillationTask` wraps a student and an optional frozen teacher; its forward returns the
named loss terms and the student logits, so one training loop serves all three runs.
"""

from __future__ import annotations

from typing import Hashable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from soccerkd.kd.loss import kd_loss, validate_kd_params


class DistillationTask(nn.Module):
    """Student + optional frozen teacher -> ``{"total", "task", "distill", "logits"}``.

    With a teacher, the loss is :func:`soccerkd.kd.kd_loss` (``α·T²·KL + (1−α)·CE``). The teacher is
    frozen: ``requires_grad`` off, always in eval mode (``train()`` leaves it in eval), run under
    ``torch.no_grad()``. Without a teacher (``teacher=None``) it is plain training: ``total = task``
    (cross-entropy) and ``distill`` is a zero tensor, so logging code sees the same keys.

    ``cache_teacher=True`` keeps teacher logits (on CPU) per clip id passed to :meth:`forward`; only
    use it when an id always denotes the identical input tensor (no random augmentation), since a
    cached id is never recomputed. Optimise ``task.student.parameters()`` (or :meth:`trainable_parameters`).
    """

    def __init__(self, student: nn.Module, teacher: nn.Module | None = None, *, alpha: float = 0.5,
                 temperature: float = 4.0, cache_teacher: bool = False, kl_reduction: str = "batchmean") -> None:
        super().__init__()
        if teacher is not None:
            validate_kd_params(alpha=alpha, temperature=temperature, reduction=kl_reduction)
            teacher.requires_grad_(False)
            teacher.eval()
        self.student = student
        self.teacher = teacher
        self.alpha = float(alpha)
        self.temperature = float(temperature)
        self.kl_reduction = kl_reduction
        self.cache_teacher = cache_teacher
        self._cache: dict[Hashable, torch.Tensor] = {}

    def train(self, mode: bool = True) -> "DistillationTask":
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The student's parameters that require grad (what the optimizer should hold)."""
        return [p for p in self.student.parameters() if p.requires_grad]

    @property
    def cache_size(self) -> int:
        return len(self._cache)

    def clear_cache(self) -> None:
        self._cache.clear()

    def teacher_logits(self, clips: torch.Tensor, clip_ids: Sequence[Hashable] | None = None) -> torch.Tensor:
        """Teacher logits for ``clips`` (fp32, no grad), from the cache where ids were seen before."""
        if self.teacher is None:
            raise RuntimeError("this task has no teacher")
        if not (self.cache_teacher and clip_ids is not None):
            return self._run_teacher(clips)
        if len(clip_ids) != clips.shape[0]:
            raise ValueError(f"got {len(clip_ids)} clip ids for a batch of {clips.shape[0]} clips")
        todo = [i for i, cid in enumerate(clip_ids) if cid not in self._cache]
        if todo:
            fresh = self._run_teacher(clips[todo]).cpu()
            for row, i in enumerate(todo):
                self._cache[clip_ids[i]] = fresh[row]
        return torch.stack([self._cache[cid] for cid in clip_ids]).to(clips.device)

    def _run_teacher(self, clips: torch.Tensor) -> torch.Tensor:
        assert self.teacher is not None
        with torch.no_grad():
            return self.teacher(clips).float()

    def forward(self, clips: torch.Tensor, target: torch.Tensor,
                clip_ids: Sequence[Hashable] | None = None) -> dict[str, torch.Tensor]:
        logits = self.student(clips)
        if self.teacher is None:
            task = F.cross_entropy(logits.float(), target)
            return {"total": task, "task": task, "distill": torch.zeros((), device=task.device), "logits": logits}
        terms = kd_loss(logits, self.teacher_logits(clips, clip_ids), target,
                        alpha=self.alpha, temperature=self.temperature,
                        reduction=self.kl_reduction)  # type: ignore[arg-type]
        return {**terms, "logits": logits}

    def step(self, clips: torch.Tensor, target: torch.Tensor,
             clip_ids: Sequence[Hashable] | None = None) -> dict[str, torch.Tensor]:
        """Alias of calling the task (runs hooks): the named terms plus ``logits``."""
        return self(clips, target, clip_ids)
