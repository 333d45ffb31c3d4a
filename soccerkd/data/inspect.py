"""Dataset inspection: class counts, durations, fps, resolutions and a PNG contact sheet."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from soccerkd.data.folders import discover_classes, scan_videos
from soccerkd.data.decode import VIDEO_EXTENSIONS, open_video
from soccerkd.data.splits import MANIFEST_NAME, read_manifest
from soccerkd.errors import DataError
from soccerkd.wording import plural


def inspect_dataset(path: str | Path, *, sheet: str | Path | None = None, per_class: int = 6,
                    progress: bool = True) -> dict[str, Any]:
    """Summarise a class-folder dataset (or one video) and write a contact sheet PNG.

    The sheet has one row per class and ``per_class`` sample videos (middle frame each);
    default location ``<path>/contact_sheet.png`` (``<video>.png`` for a single video).
    """
    from tqdm import tqdm

    path = Path(path)
    if path.is_file() or (path.is_dir() and path.suffix.lower() in VIDEO_EXTENSIONS):
        videos = [(path.name, "video")]
        root = path.parent
        default_sheet = path.with_suffix(".png")
    else:
        classes = discover_classes(path)
        videos = scan_videos(path, classes)
        root = path
        default_sheet = path / "contact_sheet.png"
    stats: dict[str, list[tuple[float, float, int, int]]] = defaultdict(list)
    samples: dict[str, list[np.ndarray]] = defaultdict(list)
    for rel, label in tqdm(videos, desc="inspect", unit="video", disable=not progress):
        with open_video(root / rel) as reader:
            info = reader.info
            stats[label].append((info.duration_s, info.fps, info.width, info.height))
            if len(samples[label]) < per_class:
                samples[label].append(reader.read([info.num_frames // 2])[0])
    summary: dict[str, Any] = {"path": str(path), "num_videos": len(videos), "classes": {}}
    for label, rows in stats.items():
        d = np.array([r[0] for r in rows])
        summary["classes"][label] = {
            "videos": len(rows), "duration_s": {"min": float(d.min()), "mean": float(d.mean()), "max": float(d.max())},
            "fps": dict(Counter(round(r[1], 3) for r in rows)),
            "resolution": dict(Counter(f"{r[2]}x{r[3]}" for r in rows)),
        }
    manifest = root / MANIFEST_NAME
    if manifest.is_file():
        summary["splits"] = read_manifest(manifest).counts()
    out = Path(sheet) if sheet is not None else default_sheet
    write_contact_sheet(samples, out)
    summary["sheet"] = str(out)
    return summary


def write_contact_sheet(samples: dict[str, list[np.ndarray]], out: str | Path, *, tile_h: int = 120) -> Path:
    """One row per class (label at the left), tiles scaled to ``tile_h`` pixels high."""
    import cv2

    if not samples:
        raise DataError("no frames to put on a contact sheet")
    rows = []
    width = 0
    for label, frames in samples.items():
        tiles = [cv2.resize(f, (max(1, round(f.shape[1] * tile_h / f.shape[0])), tile_h)) for f in frames]
        tag = np.full((tile_h, 90, 3), 30, np.uint8)
        cv2.putText(tag, label, (4, tile_h // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        row = np.concatenate([tag] + tiles, 1)
        rows.append(row)
        width = max(width, row.shape[1])
    sheet = np.concatenate([np.pad(r, ((0, 2), (0, width - r.shape[1]), (0, 0))) for r in rows], 0)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise DataError(f"cannot write contact sheet {str(out)!r}")
    return out


def format_summary(summary: dict[str, Any]) -> str:
    lines = [f"{summary['path']}: {plural(summary['num_videos'], 'video')}"]
    lines.append(f"{'class':<12}{'videos':>7}{'dur min/mean/max s':>22}  fps  resolution")
    for label, c in sorted(summary["classes"].items()):
        d = c["duration_s"]
        fps = ",".join(f"{k:g}" for k in c["fps"])
        res = ",".join(c["resolution"])
        lines.append(f"{label:<12}{c['videos']:>7}{d['min']:>8.2f}/{d['mean']:.2f}/{d['max']:.2f}  {fps:>4}  {res}")
    if "splits" in summary:
        for split, counts in summary["splits"].items():
            lines.append(f"split {split:<5} " + " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    lines.append(f"contact sheet: {summary['sheet']}")
    return "\n".join(lines)
