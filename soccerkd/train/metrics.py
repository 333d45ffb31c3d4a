"""Pure classification metrics over evaluation outputs (numpy only, no torch).

Inputs are per-clip class probabilities, labels and the video each clip came from. Definitions:

* **clip accuracy**: argmax of each clip's probabilities vs its label.
* **video accuracy**: per video, mean the softmax probabilities of its K uniform clips, then argmax.
* **video accuracy (upstream rule)**: a video counts as correct when at least half of its clips
  are correct (SoccerKDNet's ``correct >= total / 2`` over frames); reported for comparison.
* **frame accuracy** (paper parity, the upstream per-frame protocol): only for ``frames=1`` models,
  where a clip is one frame. For clip models it is ``None``: giving each frame its clip's
  prediction would only repeat clip accuracy under another name.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _as_arrays(probs: Any, labels: Any, video_index: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    v = np.asarray(video_index, dtype=np.int64)
    if p.ndim != 2 or y.shape != (p.shape[0],) or v.shape != (p.shape[0],):
        raise ValueError(f"need probs N×C, labels N, video_index N; got {p.shape}, {y.shape}, {v.shape}")
    return p, y, v


def clip_accuracy(probs: Any, labels: Any) -> float:
    p, y = np.asarray(probs), np.asarray(labels)
    return float((p.argmax(axis=1) == y).mean()) if len(y) else float("nan")


def video_predictions(probs: Any, labels: Any, video_index: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per video (sorted by index): mean softmax over its clips, its label, and its clip-correct rate.

    Raises ``ValueError`` when one video's clips carry different labels.
    """
    p, y, v = _as_arrays(probs, labels, video_index)
    vids, inverse = np.unique(v, return_inverse=True)
    n = np.bincount(inverse, minlength=len(vids)).astype(np.float64)
    mean = np.zeros((len(vids), p.shape[1]))
    np.add.at(mean, inverse, p)
    mean /= n[:, None]
    vlabel = np.full(len(vids), -1)
    vlabel[inverse] = y
    if np.any(vlabel[inverse] != y):
        bad = vids[np.unique(inverse[vlabel[inverse] != y])][:5]
        raise ValueError(f"videos {bad.tolist()} have clips with different labels")
    correct = np.zeros(len(vids))
    np.add.at(correct, inverse, (p.argmax(axis=1) == y).astype(np.float64))
    return mean, vlabel, correct / n


def video_accuracy(probs: Any, labels: Any, video_index: Any) -> float:
    """Accuracy of the argmax of each video's mean clip softmax."""
    mean, vlabel, _ = video_predictions(probs, labels, video_index)
    return float((mean.argmax(axis=1) == vlabel).mean()) if len(vlabel) else float("nan")


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """``cm[i, j]`` = number of samples of true class i predicted as j."""
    t, p = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    for name, arr in (("y_true", t), ("y_pred", p)):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(f"{name} has labels outside [0, {num_classes}): {np.unique(arr).tolist()}")
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def precision_recall_f1(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class precision, recall, F1 and support from a confusion matrix (0 where undefined)."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    pred, true = cm.sum(axis=0), cm.sum(axis=1)
    precision = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
    recall = np.divide(tp, true, out=np.zeros_like(tp), where=true > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": true.astype(np.int64)}


def summarize(probs: Any, labels: Any, video_index: Any, class_names: Sequence[str],
              frames_per_clip: int = 1) -> dict[str, Any]:
    """Every evaluation metric as a JSON-safe dict; per-class figures are at the video level."""
    p, y, v = _as_arrays(probs, labels, video_index)
    mean, vlabel, clip_correct_rate = video_predictions(p, y, v)
    vpred = mean.argmax(axis=1)
    cm = confusion_matrix(vlabel, vpred, len(class_names))
    prf = precision_recall_f1(cm)
    clip_acc = clip_accuracy(p, y)
    return {
        "clip_acc": clip_acc,
        "video_acc": float((vpred == vlabel).mean()) if len(vlabel) else float("nan"),
        "video_acc_upstream": float((clip_correct_rate >= 0.5).mean()) if len(vlabel) else float("nan"),
        "frame_acc": clip_acc if frames_per_clip == 1 else None,
        "num_clips": int(len(y)),
        "num_frames": int(len(y) * frames_per_clip),
        "num_videos": int(len(vlabel)),
        "macro_f1": float(prf["f1"].mean()),
        "per_class": {name: {k: (int(prf[k][i]) if k == "support" else float(prf[k][i]))
                             for k in ("precision", "recall", "f1", "support")}
                      for i, name in enumerate(class_names)},
        "confusion_matrix": cm.tolist(),
    }
