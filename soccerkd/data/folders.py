"""The class-folder layout: which folders are classes and which entries in them are videos (no torch).

::

    root/<class>/<video>.<ext>            video files (mp4, avi, mkv, ... anything OpenCV opens)
    root/<class>/<video>/<frame>.jpg      extracted frames, natural filename order
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from soccerkd.data.decode import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from soccerkd.errors import DataError


def _is_video_entry(p: Path) -> bool:
    if p.is_file():
        return p.suffix.lower() in VIDEO_EXTENSIONS
    if p.is_dir():
        return any(c.suffix.lower() in IMAGE_EXTENSIONS for c in p.iterdir() if c.is_file())
    return False


def check_root(root: Path) -> None:
    """:class:`DataError` saying what is wrong when ``root`` is not a dataset folder."""
    if not root.exists():
        raise DataError(f"dataset root {str(root)!r} does not exist; pass the folder that holds one "
                        f"folder per class (e.g. data/synth from 'soccerkd data synth --out data/synth')")
    if not root.is_dir():
        raise DataError(f"dataset root {str(root)!r} is a file, not a directory; pass the folder that holds "
                        f"one folder per class")


def discover_classes(root: str | Path) -> tuple[str, ...]:
    """Sorted names of the class folders under ``root`` (folders that hold at least one video)."""
    root = Path(root)
    check_root(root)
    names = sorted(d.name for d in root.iterdir() if d.is_dir() and any(_is_video_entry(p) for p in d.iterdir()))
    if not names:
        raise DataError(f"dataset root {str(root)!r} has no class folders holding videos or frame folders")
    return tuple(names)


def scan_videos(root: str | Path, class_names: Sequence[str]) -> list[tuple[str, str]]:
    """``(relative_path, class_name)`` of every video under the folders of ``class_names``."""
    root = Path(root)
    check_root(root)
    wanted = {c.lower(): c for c in class_names}
    found: list[tuple[str, str]] = []
    seen_classes = set()
    for d in sorted(root.iterdir()):
        if not d.is_dir() or d.name.lower() not in wanted:
            continue
        seen_classes.add(wanted[d.name.lower()])
        for p in sorted(d.iterdir()):
            if _is_video_entry(p):
                found.append((p.relative_to(root).as_posix(), wanted[d.name.lower()]))
    if not found:
        present = sorted(d.name for d in root.iterdir() if d.is_dir())
        raise DataError(f"no videos for classes {tuple(class_names)} under {str(root)!r} "
                        f"(class folders present: {present})")
    return found
