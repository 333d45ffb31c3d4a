"""PNG plots a person would rather look at than read: confusion matrix and training curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(cm: Any, class_names: Sequence[str], path: str | Path, title: str = "") -> Path:
    """Row-normalised confusion matrix (true × predicted) with raw counts in each cell."""
    plt = _pyplot()
    cm = np.asarray(cm)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    fig, ax = plt.subplots(figsize=(1.2 * len(class_names) + 2, 1.2 * len(class_names) + 1.5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{cm[i, j]}", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_title(title or "confusion matrix (row-normalised colour, counts)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_curves(history: Sequence[Mapping[str, Any]], path: str | Path, title: str = "") -> Path:
    """Loss (left) and accuracy (right) per epoch from the run's metrics history."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("train_loss", "train_task", "train_distill", "val_loss"):
        vals = [h.get(key) for h in history]
        if any(v is not None for v in vals):
            ax_loss.plot(epochs, [np.nan if v is None else v for v in vals], marker="o", label=key)
    for key in ("train_acc", "val_clip_acc", "val_video_acc"):
        vals = [h.get(key) for h in history]
        if any(v is not None for v in vals):
            ax_acc.plot(epochs, [np.nan if v is None else v for v in vals], marker="o", label=key)
    ax_loss.set_xlabel("epoch"), ax_loss.set_ylabel("loss"), ax_loss.legend()
    ax_acc.set_xlabel("epoch"), ax_acc.set_ylabel("accuracy"), ax_acc.set_ylim(0, 1), ax_acc.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_val_accuracy(runs: Mapping[str, Sequence[str | Path]], path: str | Path, title: str = "",
                      chance: float | None = None) -> Path:
    """Val video accuracy per epoch: one colour per label (e.g. teacher, student, KD), one line per
    run directory (its ``metrics.json``), so seeds show as a spread."""
    import json

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, (label, dirs) in enumerate(runs.items()):
        color = f"C{i}"
        for j, d in enumerate(dirs):
            rows = json.loads((Path(d) / "metrics.json").read_text())
            ax.plot([r["epoch"] for r in rows], [100 * r["val_video_acc"] for r in rows], "o-", color=color,
                    alpha=0.85, label=label if j == 0 else None)
    if chance is not None:
        ax.axhline(100 * chance, color="grey", ls=":", lw=1, label="chance")
    ax.set_xlabel("epoch")
    ax.set_ylabel("val video accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
