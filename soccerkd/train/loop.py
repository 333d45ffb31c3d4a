"""The one training loop and the evaluation pass. Both take their collaborators as arguments.

A *task* (:class:`soccerkd.kd.DistillationTask`) turns a batch into named loss terms plus the
student logits; the loop back-propagates ``total`` only. Without a teacher the task is plain
cross-entropy (teacher fine-tuning, student baseline); with one it is the KD loss.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any, Callable, Iterable, Protocol, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from soccerkd.errors import SoccerKDError
from soccerkd.train.metrics import softmax, summarize


class Task(Protocol):
    """What the loop trains: ``task(clips, targets) -> {"total", "task", "distill", "logits"}``.

    :class:`soccerkd.kd.DistillationTask` is the implementation (student + optional frozen teacher).
    """

    def __call__(self, clips: Tensor, targets: Tensor) -> dict[str, Tensor]: ...

    def train(self, mode: bool = True) -> Any: ...


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    if amp and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def _progress(iterable: Iterable, enabled: bool, desc: str, total: int | None = None):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True)


def to_device(clips: Tensor | dict[str, Tensor], device: torch.device) -> Tensor | dict[str, Tensor]:
    """A batch of clips, or a fast loader's dict of tensors (frames + crop boxes), on ``device``."""
    if isinstance(clips, dict):
        return {k: v.to(device, non_blocking=True) for k, v in clips.items()}
    return clips.to(device, non_blocking=True)


def train_one_epoch(task: Task, loader: Iterable, optimizer: torch.optim.Optimizer, *,
                    device: torch.device | str = "cpu", scaler: Any = None, amp: bool = False,
                    max_steps: int | None = None, progress: bool = True, desc: str = "train",
                    prepare: Callable[[Tensor], Tensor] | None = None) -> dict[str, float]:
    """One pass over ``loader`` (items ``(clip, label, video_index)``); returns mean loss terms.

    ``prepare`` runs on each batch once it is on the device (e.g. :class:`DeviceNormalize` for
    uint8 batches from a fast loader).

    ``task`` is set to train mode (its teacher, if any, stays frozen in eval mode). With ``scaler``
    (a ``torch.amp.GradScaler``) and ``amp`` on CUDA, forward runs in fp16 autocast.
    Returns ``loss`` (mean total), ``task``, ``distill`` (when present), ``acc``, ``steps``,
    ``clips`` and ``clips_per_s``.
    """
    device = torch.device(device)
    task.train()
    sums: dict[str, float] = {}
    correct = seen = steps = 0
    start = time.perf_counter()
    total = len(loader) if hasattr(loader, "__len__") else None  # type: ignore[arg-type]
    if max_steps is not None and total is not None:
        total = min(total, max_steps)
    bar = _progress(loader, progress, desc, total)
    for clips, targets, _ in bar:
        if max_steps is not None and steps >= max_steps:
            break
        clips = to_device(clips, device)
        if prepare is not None:
            clips = prepare(clips)
        targets = targets.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with _autocast(device, amp):
            terms = dict(task(clips, targets))
        logits = terms.pop("logits")
        loss = terms["total"]
        if not torch.isfinite(loss):
            raise SoccerKDError(f"training diverged: loss is {loss.item()} at step {steps} ({desc}); "
                                f"lower optim.lr")
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        n = targets.shape[0]
        for key, value in terms.items():
            sums[key] = sums.get(key, 0.0) + float(value.detach()) * n
        correct += int((logits.detach().argmax(dim=1) == targets).sum())
        seen += n
        steps += 1
        if progress and hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{sums['total'] / seen:.3f}", acc=f"{correct / seen:.3f}")
    elapsed = time.perf_counter() - start
    if seen == 0:
        raise SoccerKDError(f"{desc}: the training loader yielded no batches")
    out = {"loss": sums.pop("total") / seen, "acc": correct / seen, "steps": steps, "clips": seen,
           "clips_per_s": seen / elapsed if elapsed > 0 else math.inf}
    out.update({key: value / seen for key, value in sums.items()})
    return out


@torch.no_grad()
def predict(model: nn.Module, loader: Iterable, *, device: torch.device | str = "cpu", amp: bool = False,
            progress: bool = True, desc: str = "eval",
            prepare: Callable[[Tensor], Tensor] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logits, labels and video indices for every clip in ``loader`` (model in eval mode)."""
    device = torch.device(device)
    model.eval()
    logits, labels, videos = [], [], []
    total = len(loader) if hasattr(loader, "__len__") else None  # type: ignore[arg-type]
    for clips, targets, video_index in _progress(loader, progress, desc, total):
        clips = to_device(clips, device)
        if prepare is not None:
            clips = prepare(clips)
        with _autocast(device, amp):
            out = model(clips)
        logits.append(out.float().cpu().numpy())
        labels.append(np.asarray(targets).reshape(-1))
        videos.append(np.asarray(video_index).reshape(-1))
    if not logits:
        raise SoccerKDError(f"{desc}: the evaluation loader yielded no batches")
    return np.concatenate(logits), np.concatenate(labels), np.concatenate(videos)


def evaluate(model: nn.Module, loader: Iterable, *, class_names: Sequence[str], device: torch.device | str = "cpu",
             amp: bool = False, frames_per_clip: int = 1, progress: bool = True,
             desc: str = "eval", prepare: Callable[[Tensor], Tensor] | None = None) -> dict[str, Any]:
    """Clip / video / frame accuracy, loss, per-class P/R/F1 and the confusion matrix.

    The loader should hold K uniform clips per video, each item tagged with its video index;
    video accuracy is the argmax of the mean softmax over a video's clips (see
    :mod:`soccerkd.train.metrics` for every definition).
    """
    logits, labels, videos = predict(model, loader, device=device, amp=amp, progress=progress, desc=desc,
                                     prepare=prepare)
    probs = softmax(logits.astype(np.float64))
    metrics = summarize(probs, labels, videos, class_names, frames_per_clip=frames_per_clip)
    metrics["loss"] = float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())
    return metrics
