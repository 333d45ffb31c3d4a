"""Clip datasets over class-folder layouts: SoccerDB1 and any UCF101/HMDB51-style video folder.

Layouts (class folder names match the class names case-insensitively)::

    root/<class>/<video>.<ext>            video files (mp4, avi, mkv, ... anything OpenCV opens)
    root/<class>/<video>/<frame>.jpg      extracted frames, natural filename order

Items are ``(clip, label, video_index)``: ``clip`` is a float ``3×T×S×S`` tensor normalised as the
model's :class:`InputSpec` says, ``label`` indexes ``input_spec.class_names`` and ``video_index``
indexes ``dataset.videos``. Sampling ``"random"`` (training) draws one random clip per video and
item; ``"uniform"`` (evaluation) gives ``clips_per_video`` evenly spaced clips per video, one item
each, so video accuracy is the mean softmax over a video's items.

``clip_layout="stride"`` (default) takes T frames every ``stride`` frames from a start;
``clip_layout="segments"`` is TSN-style (:func:`soccerkd.data.clips.segment_indices`): one frame from
each of T equal segments of the whole video, at a random offset per segment in training and at
offset ``(k + 0.5) / K`` for evaluation clip k of K, so the K clips differ and each spans the video
(with strides, K clips of a 25-frame video start at frames 0..3 and nearly coincide).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from soccerkd.data.clips import (clip_indices, eval_segment_offsets, max_start, segment_indices,
                                 uniform_clip_starts)
from soccerkd.data.decode import DEFAULT_FOLDER_FPS, open_video
from soccerkd.data.folders import check_root, discover_classes, scan_videos  # noqa: F401  (this module's API)
from soccerkd.data.splits import MANIFEST_NAME, SplitManifest, read_manifest
from soccerkd.data.transforms import build_transform
from soccerkd.errors import ConfigError, DataError
from soccerkd.spec import SOCCERDB1_CLASSES, InputSpec

Sampling = Literal["random", "uniform"]
ClipLayout = Literal["stride", "segments"]
CLIP_LAYOUTS = ("stride", "segments")


@dataclass(frozen=True)
class VideoRecord:
    """One labelled video: ``path`` is a file or a frame folder; ``rel_path`` is relative to the root."""

    path: str
    rel_path: str
    label: int
    class_name: str


def _resolve_manifest(root: Path, manifest: str | Path | SplitManifest | None) -> SplitManifest | None:
    if isinstance(manifest, SplitManifest):
        return manifest
    if manifest is not None:
        return read_manifest(manifest)
    default = root / MANIFEST_NAME
    return read_manifest(default) if default.is_file() else None


class ClipDataset(Dataset):
    """Clips of a list of labelled videos; see the module docstring for items and sampling.

    ``cache``: ``None``; ``"memory"`` keeps each decoded video (uint8) in this process, call
    :meth:`preload` before creating DataLoader workers so they share it; or a directory where
    each decoded video is stored once as ``.npy`` and memory-mapped by every worker.
    """

    def __init__(self, videos: Sequence[VideoRecord], input_spec: InputSpec, *, train: bool,
                 sampling: Sampling | None = None, clips_per_video: int | None = None,
                 cache: str | Path | None = None, folder_fps: float = DEFAULT_FOLDER_FPS,
                 seed: int | None = None, clip_layout: ClipLayout = "stride", fast: bool = False,
                 crop_scale: tuple[float, float] = (0.35, 1.0)) -> None:
        if not videos:
            raise DataError("a clip dataset needs at least one video")
        sampling = sampling or ("random" if train else "uniform")
        if sampling not in ("random", "uniform"):
            raise ConfigError(f"sampling must be 'random' or 'uniform', got {sampling!r}")
        k = clips_per_video if clips_per_video is not None else (1 if sampling == "random" else 4)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"clips_per_video must be an integer >= 1, got {clips_per_video!r}")
        self.videos = tuple(videos)
        self.input_spec = input_spec
        self.train, self.sampling, self.clips_per_video = train, sampling, k
        self.folder_fps = folder_fps
        if clip_layout not in CLIP_LAYOUTS:
            raise ConfigError(f"clip_layout must be one of {CLIP_LAYOUTS}, got {clip_layout!r}")
        self.clip_layout = clip_layout
        # seed=None: random draws come from torch's global generator (DataLoader seeds each worker);
        # an int: item i of epoch e draws from its own generator seeded by (seed, e, i), so a run
        # gives the same clips whatever the number of workers, and a resumed run the same as an
        # uninterrupted one (call set_epoch before each epoch)
        self.seed, self.epoch = seed, 0
        # fast: the memory cache holds each video already resized (decode and resize once) and items
        # are uint8 crops, normalised on the device by DeviceNormalize; training items are the clip's
        # frames plus a crop box and flip drawn here, cropped and flipped on the device
        self.fast = fast
        self.transform = build_transform(input_spec, train=train, uint8=fast, crop_scale=crop_scale)
        self._memory: dict[int, tuple[np.ndarray, float]] | None = None
        self._cache_dir: Path | None = None
        if cache == "memory":
            self._memory = {}
        elif cache is not None:
            self._cache_dir = Path(cache)
            self._cache_dir.mkdir(parents=True, exist_ok=True)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.input_spec.class_names

    @property
    def num_videos(self) -> int:
        return len(self.videos)

    @property
    def video_labels(self) -> list[int]:
        return [v.label for v in self.videos]

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose random draws the next items make (with ``seed`` set)."""
        self.epoch = int(epoch)

    def item_generator(self, item: int) -> torch.Generator | None:
        """The generator item ``item`` of the current epoch draws from (None without ``seed``)."""
        if self.seed is None:
            return None
        state = np.random.SeedSequence([int(self.seed) % 2**32, self.epoch, int(item)]).generate_state(2)
        return torch.Generator().manual_seed(int(state[0]) << 31 ^ int(state[1]))

    def video_index_of(self, item: int) -> int:
        return item // self.clips_per_video

    def __len__(self) -> int:
        return len(self.videos) * self.clips_per_video

    def __getitem__(self, item: int) -> tuple[torch.Tensor, int, int]:
        if not 0 <= item < len(self):
            raise IndexError(f"item {item} out of range 0..{len(self) - 1}")
        vi, k = divmod(item, self.clips_per_video)
        gen = self.item_generator(item)
        frames = self.read_clip_frames(vi, k, generator=gen)
        if self.fast and self.train:  # crop, resize and flip on the device (DeviceNormalize)
            return self.transform.device_item(frames, generator=gen), self.videos[vi].label, vi
        return self.transform(frames, generator=gen), self.videos[vi].label, vi

    @property
    def collate_fn(self) -> Callable[[list], Any] | None:
        """The DataLoader collate these items need (fast training items are dicts; see
        :func:`soccerkd.data.transforms.collate_clips`), None for torch's default."""
        from soccerkd.data.transforms import collate_clips

        return collate_clips if self.fast and self.train else None

    def read_clip_frames(self, video_index: int, clip: int = 0,
                         generator: torch.Generator | None = None) -> np.ndarray:
        """The uint8 ``T×H×W×3`` frames of one clip of a video (random or uniform clip ``clip``)."""
        spec = self.input_spec.clip
        cached = self._cached(video_index)
        reader = None
        if cached is not None:
            full, fps = cached
            n = len(full)
        else:
            reader = open_video(self.videos[video_index].path, folder_fps=self.folder_fps)
            n, fps = reader.info.num_frames, reader.info.fps
        try:
            if self.clip_layout == "segments":
                offsets = (torch.rand(spec.num_frames, generator=generator).clamp_(max=0.999999).tolist()
                           if self.sampling == "random" else eval_segment_offsets(self.clips_per_video)[clip])
                idx = segment_indices(n, spec.num_frames, offsets)
            elif self.sampling == "random":
                start = int(torch.randint(0, max_start(n, spec, fps) + 1, (), generator=generator))
                idx = clip_indices(start, n, spec, fps)
            else:
                start = uniform_clip_starts(n, spec, self.clips_per_video, fps)[clip]
                idx = clip_indices(start, n, spec, fps)
            return np.asarray(full[list(idx)]) if reader is None else reader.read(idx)
        finally:
            if reader is not None:
                reader.close()

    def _cached(self, vi: int) -> tuple[np.ndarray, float] | None:
        if self._memory is None and self._cache_dir is None:
            return None
        if self._memory is not None and vi in self._memory:
            return self._memory[vi]
        record = self.videos[vi]
        entry: tuple[np.ndarray, float] | None = None
        if self._cache_dir is not None:
            key = _cache_key(record.path)
            npy, meta = self._cache_dir / f"{key}.npy", self._cache_dir / f"{key}.fps"
            if npy.is_file() and meta.is_file():
                entry = (np.load(npy, mmap_mode="r"), float(meta.read_text()))
        if entry is None:
            with open_video(record.path, folder_fps=self.folder_fps) as reader:
                entry = (reader.read_all(), reader.info.fps)
            if self._cache_dir is not None:
                tmp = self._cache_dir / f".{key}.{os.getpid()}.npy"
                np.save(tmp, entry[0])
                (self._cache_dir / f"{key}.fps").write_text(repr(entry[1]))
                os.replace(tmp, npy)
        if self._memory is not None:
            frames = self.transform.pre_resize(np.asarray(entry[0])) if self.fast else np.asarray(entry[0])
            entry = (frames, entry[1])
            self._memory[vi] = entry
        return entry

    def preload(self, *, progress: bool = True) -> "ClipDataset":
        """Decode every video into the cache now (do this before forking DataLoader workers)."""
        if self._memory is None and self._cache_dir is None:
            return self
        from tqdm import tqdm

        for vi in tqdm(range(self.num_videos), desc="decode", unit="video", disable=not progress):
            self._cached(vi)
        return self


def _cache_key(path: str) -> str:
    st = os.stat(path)
    return hashlib.sha1(f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:20]


def records_for(root: str | Path, input_spec: InputSpec, *, split: str = "train",
                manifest: str | Path | SplitManifest | None = None) -> list[VideoRecord]:
    """Labelled videos of ``split`` under ``root``, from the manifest (default ``root/manifest.json``).

    ``split='all'`` needs no manifest: it scans the class folders.
    """
    root = Path(root)
    check_root(root)
    label_of = {c.lower(): i for i, c in enumerate(input_spec.class_names)}
    loaded = _resolve_manifest(root, manifest)
    if loaded is not None:
        entries = loaded.entries(split)
    elif split == "all":
        entries = tuple(scan_videos(root, input_spec.class_names))
    else:
        raise DataError(f"no split manifest at {str(root / MANIFEST_NAME)!r}; create one with "
                        f"'soccerkd data split {root}' or pass manifest=")
    records = []
    for rel, name in entries:
        if name.lower() not in label_of:
            raise DataError(f"video {rel!r} has class {name!r}, which the input spec does not know "
                            f"(class_names={input_spec.class_names})")
        path = root / rel
        if not path.exists():
            raise DataError(f"video {str(path)!r} listed in the manifest does not exist")
        records.append(VideoRecord(str(path), rel, label_of[name.lower()], input_spec.class_names[label_of[name.lower()]]))
    if not records:
        raise DataError(f"split {split!r} of {str(root)!r} holds no videos")
    return records


class VideoFolder(ClipDataset):
    """Any class-folder video dataset (UCF101/HMDB51 style); classes are ``input_spec.class_names``.

    Build the spec's class names with :func:`discover_classes` for a new dataset.
    """

    def __init__(self, root: str | Path, input_spec: InputSpec, *, split: str = "train",
                 manifest: str | Path | SplitManifest | None = None, train: bool | None = None,
                 sampling: Sampling | None = None, clips_per_video: int | None = None,
                 cache: str | Path | None = None, folder_fps: float = DEFAULT_FOLDER_FPS,
                 seed: int | None = None, clip_layout: ClipLayout = "stride", fast: bool = False,
                 crop_scale: tuple[float, float] = (0.35, 1.0)) -> None:
        self.root = Path(root)
        self.split = split
        super().__init__(records_for(root, input_spec, split=split, manifest=manifest), input_spec,
                         train=(split == "train") if train is None else train, sampling=sampling,
                         clips_per_video=clips_per_video, cache=cache, folder_fps=folder_fps, seed=seed,
                         clip_layout=clip_layout, fast=fast, crop_scale=crop_scale)


class SoccerDB1(VideoFolder):
    """SoccerDB1 (dribble, kick, run, walk) in the video or the extracted-frames layout.

    The spec's class names must be the four SoccerDB1 classes (any order, any case); labels follow
    the spec's order.
    """

    def __init__(self, root: str | Path, input_spec: InputSpec, **kwargs: object) -> None:
        if sorted(c.lower() for c in input_spec.class_names) != sorted(SOCCERDB1_CLASSES):
            raise ConfigError(f"SoccerDB1 needs class_names {SOCCERDB1_CLASSES}, got {input_spec.class_names}")
        super().__init__(root, input_spec, **kwargs)  # type: ignore[arg-type]
