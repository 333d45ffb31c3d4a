"""How well an event timeline matches the truth, and quantiles from Prometheus histograms. Pure.

Segments are half-open frame ranges ``[start, end)`` with a label. A predicted segment matches a
true one when the labels agree and their temporal IoU is at least the threshold; each true
segment is matched at most once (greedy by IoU, highest first).

Example: truth ``run [0, 100)``, prediction ``run [10, 100)`` -> IoU 90/100 = 0.9, a match;
prediction ``walk [0, 100)`` -> no match (label differs), so precision 0/1 and recall 0/1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence


@dataclass(frozen=True)
class Segment:
    label: str
    start: int
    end: int  # exclusive

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"segment end must be > start, got [{self.start}, {self.end}) for {self.label!r}")


@dataclass(frozen=True)
class SegmentScore:
    true_positives: int
    num_predicted: int
    num_true: int
    matches: tuple[tuple[int, int, float], ...]  # (predicted index, true index, IoU)

    @property
    def precision(self) -> float:
        return self.true_positives / self.num_predicted if self.num_predicted else 0.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.num_true if self.num_true else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def temporal_iou(a: Segment, b: Segment) -> float:
    inter = max(0, min(a.end, b.end) - max(a.start, b.start))
    union = (a.end - a.start) + (b.end - b.start) - inter
    return inter / union if union else 0.0


def match_segments(predicted: Sequence[Segment], truth: Sequence[Segment], *, iou: float = 0.5) -> SegmentScore:
    """Greedy one-to-one matching of same-label segments with IoU >= ``iou``."""
    if not 0 < iou <= 1:
        raise ValueError(f"iou threshold must be in (0, 1], got {iou!r}")
    candidates = sorted(
        ((temporal_iou(p, t), i, j) for i, p in enumerate(predicted) for j, t in enumerate(truth)
         if p.label == t.label),
        reverse=True)
    used_p: set[int] = set()
    used_t: set[int] = set()
    matches = []
    for score, i, j in candidates:
        if score < iou:
            break
        if i in used_p or j in used_t:
            continue
        used_p.add(i)
        used_t.add(j)
        matches.append((i, j, score))
    return SegmentScore(len(matches), len(predicted), len(truth), tuple(sorted(matches)))


def frame_accuracy(predicted: Sequence[Segment], truth: Sequence[Segment], num_frames: int) -> float:
    """Share of frames covered by a true segment whose predicted label (if any) agrees."""
    pred = _labels_per_frame(predicted, num_frames)
    true = _labels_per_frame(truth, num_frames)
    covered = [i for i in range(num_frames) if true[i] is not None]
    return sum(pred[i] == true[i] for i in covered) / len(covered) if covered else 0.0


def _labels_per_frame(segments: Iterable[Segment], num_frames: int) -> list[str | None]:
    labels: list[str | None] = [None] * num_frames
    for seg in segments:
        for i in range(max(0, seg.start), min(num_frames, seg.end)):
            labels[i] = seg.label
    return labels


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """Prometheus-style quantile from cumulative ``(upper_bound, count)`` buckets (``+Inf`` last).

    Linear interpolation inside the bucket, as PromQL's ``histogram_quantile`` does; NaN when empty.
    """
    if not 0 <= q <= 1:
        raise ValueError(f"quantile must be in [0, 1], got {q!r}")
    if not buckets or buckets[-1][1] == 0:
        return math.nan
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound
