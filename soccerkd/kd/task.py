"""One training step's forward for teacher fine-tuning, a student baseline or distillation.

:class:`DistillationTask` wraps a student and an optional frozen teacher; its forward returns the
named loss terms and the student logits, so one training loop serves all three runs.
"""

from __future__ import annotations

from typing import Hashable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from soccerkd.kd.cache import TeacherLogitCache, clip_digests
from soccerkd.kd.loss import kd_loss, validate_kd_params


class DistillationTask(nn.Module):
    """Student + optional frozen teacher -> ``{"total", "task", "distill", "logits"}``.

    With a teacher, the loss is :func:`soccerkd.kd.kd_loss` (``α·T²·KL + (1−α)·CE``). The teacher is
    frozen: ``requires_grad`` off, always in eval mode (``train()`` leaves it in eval), run under
    ``torch.no_grad()``. Without a teacher (``teacher=None``) it is plain training: ``total = task``
    (cross-entropy) and ``distill`` is a zero tensor, so logging code sees the same keys.

    ``cache_teacher=True`` keeps teacher logits (on CPU) per clip: per clip id passed to
    :meth:`forward` (only when an id always denotes the identical input tensor, since a cached id is
    never recomputed), else per digest of the clip's content (:mod:`soccerkd.kd.cache`, always safe).
    ``cache`` passes a :class:`TeacherLogitCache` of one's own (e.g. file-backed, shared between runs).
    Optimise ``task.student.parameters()`` (or :meth:`trainable_parameters`).
    """

    def __init__(self, student: nn.Module, teacher: nn.Module | None = None, *, alpha: float = 0.5,
                 temperature: float = 4.0, cache_teacher: bool = False, kl_reduction: str = "batchmean",
                 cache: TeacherLogitCache | None = None) -> None:
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
        self.cache_teacher = cache_teacher or cache is not None
        self.cache = cache if cache is not None else TeacherLogitCache()

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
        return len(self.cache)

    def clear_cache(self) -> None:
        self.cache.clear()

    def teacher_logits(self, clips: torch.Tensor, clip_ids: Sequence[Hashable] | None = None) -> torch.Tensor:
        """Teacher logits for ``clips`` (fp32, no grad), from the cache where ids were seen before."""
        if self.teacher is None:
            raise RuntimeError("this task has no teacher")
        if not self.cache_teacher:
            return self._run_teacher(clips)
        if clip_ids is None:
            clip_ids = clip_digests(clips)
        if len(clip_ids) != clips.shape[0]:
            raise ValueError(f"got {len(clip_ids)} clip ids for a batch of {clips.shape[0]} clips")
        rows: list[torch.Tensor | None] = [self.cache.get(cid) if cid in self.cache else None for cid in clip_ids]
        todo = [i for i, row in enumerate(rows) if row is None]
        if todo:
            fresh = self._run_teacher(clips[todo]).cpu()
            for j, i in enumerate(todo):
                rows[i] = fresh[j]
                self.cache.put(clip_ids[i], fresh[j])
        return torch.stack(rows).to(clips.device)  # type: ignore[arg-type]

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
