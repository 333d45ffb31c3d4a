"""The files a run leaves: events as JSON lines, a timeline PNG, the video with events drawn on it.

Events are the ``ActionEvent`` JSON dicts the service publishes (``start_seq``/``end_seq``
inclusive); ``soccerkd demo`` and ``soccerkd predict`` both write these files.
"""

from __future__ import annotations

import json

from pathlib import Path
from typing import Any, Sequence

from stream.core.evaluation import Segment

# The demo's four classes keep their colours; other class names take the next free ones.
LABEL_COLORS: dict[str, str] = {"dribble": "tab:orange", "kick": "tab:red", "run": "tab:blue", "walk": "tab:green"}
_SPARE_COLORS = ("tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray")


def event_lines(events: Sequence[dict[str, Any]]) -> str:
    """NDJSON text: one event per line, keys sorted (``events.jsonl``, ``predict --json``)."""
    return "".join(json.dumps(e, sort_keys=True) + "\n" for e in events)


def write_events(events: Sequence[dict[str, Any]], path: Path) -> Path:
    Path(path).write_text(event_lines(events))
    return path


def predicted_segments(events: Sequence[dict[str, Any]]) -> list[Segment]:
    """Events as half-open frame segments (events carry inclusive ``end_seq``), deduplicated by id."""
    seen: dict[str, Segment] = {}
    for e in events:
        seen.setdefault(e["event_id"], Segment(e["label"], int(e["start_seq"]), int(e["end_seq"]) + 1))
    return sorted(seen.values(), key=lambda s: s.start)


def label_colors(labels: Sequence[str]) -> dict[str, str]:
    colors = {k: v for k, v in LABEL_COLORS.items()}
    spare = iter(_SPARE_COLORS)
    for label in labels:
        if label not in colors:
            colors[label] = next(spare, "tab:gray")
    return colors


def plot_timeline(events: Sequence[dict[str, Any]], num_frames: int, path: Path, *,
                  truth: Sequence[Segment] = (), title: str = "SoccerKD Stream: predicted action events",
                  labels: Sequence[str] | None = None) -> Path:
    """Predicted segments (and the ground truth, when given) as bars over the frame axis.

    ``labels`` are the legend's class names (default: the demo's four, plus any other in the events).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    predicted = predicted_segments(events)
    seen = [s.label for s in [*truth, *predicted]]
    if labels is None:
        labels = list(LABEL_COLORS) + sorted(set(seen) - set(LABEL_COLORS))
    colors = label_colors(list(labels) + seen)
    rows = [("predicted", predicted)]
    if truth:
        rows.insert(0, ("ground truth", list(truth)))
    height = 1.8 + 0.8 * len(rows)
    fig, ax = plt.subplots(figsize=(12, height))
    for y, (_, segments) in enumerate(reversed(rows)):
        for seg in segments:
            ax.broken_barh([(seg.start, seg.end - seg.start)], (y - 0.35, 0.7),
                           color=colors.get(seg.label, "tab:gray"), edgecolor="black", linewidth=0.5)
    ax.set_yticks(range(len(rows)), [name for name, _ in reversed(rows)])
    ax.set_xlim(0, max(1, num_frames))
    ax.set_xlabel("frame")
    ax.set_title(title)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[k]) for k in labels]
    # the legend sits in its own strip under the axis label, so neither hides the other
    fig.legend(handles, list(labels), ncol=min(len(labels), 6) or 1, loc="lower center", frameon=False)
    fig.tight_layout(rect=(0, 0.45 / height, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_overlay(video: Path, events: Sequence[dict[str, Any]], path: Path) -> Path:
    """The input video with the current event's label and confidence drawn on each frame."""
    import cv2

    by_frame: dict[int, tuple[str, float]] = {}
    for e in events:
        for i in range(int(e["start_seq"]), int(e["end_seq"]) + 1):
            by_frame[i] = (e["label"], float(e["confidence"]))
    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    writer = None
    index = 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            # small procedural frames are upscaled so the label stays readable
            scale = max(1, 480 // frame.shape[1])
            if scale > 1:
                frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
            if writer is None:
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
            label, conf = by_frame.get(index, ("-", 0.0))
            text = f"{label} {conf:.2f}" if label != "-" else "no event"
            cv2.rectangle(frame, (0, 0), (frame.shape[1], 22), (0, 0, 0), -1)
            cv2.putText(frame, f"#{index} {text}", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1,
                        cv2.LINE_AA)
            writer.write(frame)
            index += 1
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    return path
