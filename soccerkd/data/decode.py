"""Decode adapter: video files (anything OpenCV opens) and frame folders -> uint8 RGB arrays.

Both readers share one small interface (:class:`FrameReader`): ``info`` (fps, frame count,
size) and ``read(indices)`` returning ``T×H×W×3`` uint8 RGB frames in the order asked.
Unreadable or corrupt inputs raise :class:`DataError` naming the path.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from soccerkd.errors import DataError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".flv", ".wmv")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
DEFAULT_FOLDER_FPS = 25.0
# FFmpeg prints its own errors ("moov atom not found") to stderr before ours says the same in one
# line; fatal only, unless the user set it. Read by OpenCV when it first opens a video.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")
# Seeking costs a keyframe decode; reading forward is cheaper for short jumps.
_MAX_FORWARD_GRAB = 32


@dataclass(frozen=True)
class VideoInfo:
    """What a reader knows about its source before decoding frames."""

    path: str
    fps: float
    num_frames: int
    width: int
    height: int

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps if self.fps > 0 else 0.0


class FrameReader(Protocol):
    info: VideoInfo

    def read(self, indices: Sequence[int]) -> np.ndarray: ...

    def close(self) -> None: ...


def _natural_key(name: str) -> list[object]:
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def list_frame_files(folder: str | Path) -> list[Path]:
    """Image files of a frame folder in natural order (``2.jpg`` before ``10.jpg``)."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(files, key=lambda p: _natural_key(p.name))


def _check_indices(indices: Sequence[int], info: VideoInfo) -> None:
    for i in indices:
        if not 0 <= int(i) < info.num_frames:
            raise DataError(f"frame index {i} is outside 0..{info.num_frames - 1} of {info.path!r}")


class VideoFileReader:
    """OpenCV reader for one video file; seeks by index and reads forward for short jumps.

    Containers sometimes over-report their frame count; a frame that cannot be decoded after at
    least one good frame repeats the last good frame (the same rule as clip clamping).
    """

    def __init__(self, path: str | Path) -> None:
        import cv2

        self._cv2 = cv2
        self.path = str(path)
        if not Path(path).is_file():
            raise DataError(f"video file {self.path!r} does not exist")
        cap = cv2.VideoCapture(self.path)
        if not cap.isOpened():
            cap.release()
            raise DataError(f"cannot open video {self.path!r}: OpenCV found no decodable stream "
                            "(corrupt, truncated or unsupported file)")
        self._cap = cap
        self._pos = 0
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        ok, first = cap.read()
        if not ok or first is None:
            self.close()
            raise DataError(f"cannot decode any frame of video {self.path!r} (corrupt or empty file)")
        self._pos = 1
        self._first = first
        if count <= 0:
            count = self._count_frames()
        height, width = first.shape[:2] if not (width and height) else (height, width)
        self.info = VideoInfo(self.path, fps if fps > 0 else DEFAULT_FOLDER_FPS, count, width, height)

    def _count_frames(self) -> int:
        n = 1
        while self._cap.grab():
            n += 1
        self._seek(0)
        return n

    def _seek(self, index: int) -> None:
        self._cap.set(self._cv2.CAP_PROP_POS_FRAMES, index)
        self._pos = index

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at ``indices`` (any order, repeats allowed) as ``T×H×W×3`` uint8 RGB."""
        _check_indices(indices, self.info)
        wanted = sorted(set(int(i) for i in indices))
        frames: dict[int, np.ndarray] = {}
        last_good: np.ndarray | None = None
        for idx in wanted:
            if idx == 0 and self._first is not None:
                frame = self._first
            else:
                if idx < self._pos or idx - self._pos > _MAX_FORWARD_GRAB:
                    self._seek(idx)
                while self._pos < idx:
                    if not self._cap.grab():
                        break
                    self._pos += 1
                ok, frame = self._cap.read() if self._pos == idx else (False, None)
                if ok:
                    self._pos += 1
                else:
                    frame = None
            if frame is None:
                if last_good is None:
                    raise DataError(f"cannot decode frame {idx} of video {self.path!r} (corrupt file?)")
                frame = last_good
            frames[idx] = frame
            last_good = frame
        return np.stack([self._cv2.cvtColor(frames[int(i)], self._cv2.COLOR_BGR2RGB) for i in indices])

    def read_all(self) -> np.ndarray:
        return self.read(range(self.info.num_frames))

    def close(self) -> None:
        if getattr(self, "_cap", None) is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> "VideoFileReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FrameFolderReader:
    """Reader for a folder of image files (one frame each, natural filename order)."""

    def __init__(self, folder: str | Path, fps: float = DEFAULT_FOLDER_FPS) -> None:
        import cv2

        self._cv2 = cv2
        self.path = str(folder)
        if not Path(folder).is_dir():
            raise DataError(f"frame folder {self.path!r} does not exist")
        self._files = list_frame_files(folder)
        if not self._files:
            raise DataError(f"frame folder {self.path!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        first = self._load(self._files[0])
        self.info = VideoInfo(self.path, float(fps), len(self._files), first.shape[1], first.shape[0])

    def _load(self, file: Path) -> np.ndarray:
        img = self._cv2.imread(str(file), self._cv2.IMREAD_COLOR)
        if img is None:
            raise DataError(f"cannot decode image {str(file)!r} (corrupt or not an image)")
        return img

    def read(self, indices: Sequence[int]) -> np.ndarray:
        _check_indices(indices, self.info)
        cache: dict[int, np.ndarray] = {}
        out = []
        for i in indices:
            i = int(i)
            if i not in cache:
                cache[i] = self._cv2.cvtColor(self._load(self._files[i]), self._cv2.COLOR_BGR2RGB)
            out.append(cache[i])
        return np.stack(out)

    def read_all(self) -> np.ndarray:
        return self.read(range(self.info.num_frames))

    def close(self) -> None:
        pass

    def __enter__(self) -> "FrameFolderReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_video(path: str | Path, *, folder_fps: float = DEFAULT_FOLDER_FPS) -> VideoFileReader | FrameFolderReader:
    """A reader for a video file or a frame folder (chosen by what ``path`` is)."""
    p = Path(path)
    if p.is_dir():
        return FrameFolderReader(p, fps=folder_fps)
    return VideoFileReader(p)


def probe(path: str | Path, *, folder_fps: float = DEFAULT_FOLDER_FPS) -> VideoInfo:
    """fps, frame count and size of a video file or frame folder."""
    with open_video(path, folder_fps=folder_fps) as reader:
        return reader.info


def read_frames(path: str | Path, indices: Sequence[int] | None = None, *,
                folder_fps: float = DEFAULT_FOLDER_FPS) -> np.ndarray:
    """Decode ``indices`` (default: all frames) of a video file or frame folder."""
    with open_video(path, folder_fps=folder_fps) as reader:
        return reader.read(range(reader.info.num_frames) if indices is None else indices)
