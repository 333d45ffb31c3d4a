"""Camera state, per (partition, camera, stream epoch): its windows and smoother, the messages the
offset ledger still needs, and the capture-time rules. Pure.

Capture-time rules: along the sequence, capture times never go back (a time below its
predecessor's is clamped to it and counted as ``backwards``); the pipeline counts times far from
its wall clock as ``clock_skew`` and keeps them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterator

from soccerkd.spec import InputSpec

from stream.core.ledger import CameraKey, TopicPartition
from stream.core.ports import Predictor
from stream.core.smoothing import Smoother, SmoothingConfig
from stream.core.windowing import CameraWindows, ClipWindow, WindowConfig, WindowStats
from stream.core.wire import FrameBatch

# Each WindowStats counter of dropped frames and the reason it is reported under; the metrics
# create every label of these tuples at 0.
_DROP_FIELDS = (("duplicates", "duplicate"), ("late", "late"), ("gap_frames", "gap"), ("replayed", "replayed"))
DROP_REASONS = tuple(reason for _, reason in _DROP_FIELDS)
TIMESTAMP_ANOMALIES = ("backwards", "clock_skew")


@dataclass
class Added:
    """What one message's frames did to its camera: complete windows, clamped capture times, and
    frames dropped by reason."""

    windows: list[ClipWindow[Any]]
    backwards: int
    dropped: dict[str, int]


@dataclass
class Camera:
    windows: CameraWindows[Any]
    smoother: Smoother
    key: CameraKey
    messages: deque[tuple[int, int]] = field(default_factory=deque)   # (offset, last seq), for the ledger
    pending_starts: deque[int] = field(default_factory=deque)   # start of each window waiting for inference
    last_arrival: float = 0.0   # the pipeline's idle clock when its last message was added
    fps: float = 0.0            # pinned for the epoch
    newest_ts: int = 0          # capture time of the newest frame added
    newest_seq: int = -1        # highest sequence number added, and its capture time
    newest_seq_ts: int = 0
    ended: bool = False         # a newer epoch started: finish the waiting windows, then drop

    @classmethod
    def open(cls, key: CameraKey, batch: FrameBatch, spec: InputSpec, window: WindowConfig,
             smoothing: SmoothingConfig, predictor: Predictor, *, resume_at: int | None = None) -> "Camera":
        """A camera epoch starting with ``batch`` (its fps pinned), or resuming at ``resume_at``."""
        windows: CameraWindows[Any] = CameraWindows(batch.camera_id, spec.clip, window, retain=predictor.retain,
                                                    release=predictor.release)
        windows.set_source_fps(batch.source_fps)
        if resume_at is not None:
            windows.resume_at(resume_at)
        smoother = Smoother(tuple(spec.class_names), smoothing, max_gap_ns=int(window.max_gap_s * 1e9))
        return cls(windows=windows, smoother=smoother, key=key, fps=batch.source_fps)

    def needed_frames(self, batch: FrameBatch) -> list[int]:
        """Indices of the frames of ``batch`` some window will use (not a duplicate, replay, late
        or skipped frame). The set only shrinks as windows are emitted, so deciding it before the
        frames are added is safe (at worst a frame is decoded and then let go)."""
        first = batch.first_seq
        return [i for i in range(len(batch.frames))
                if self.windows.classify(first + i) is None and self.windows.needed(first + i)]

    def add(self, batch: FrameBatch, offset: int, payloads: dict[int, Any], *, now: float) -> Added:
        """Add a message's frames (``payloads[i]``: frame ``i`` prepared, if a window needs it)."""
        self.messages.append((offset, batch.last_seq))
        self.last_arrival = now
        self.newest_ts = max(self.newest_ts, max(batch.capture_ts_ns))
        stats = self.windows.stats
        before = [getattr(stats, name) for name, _ in _DROP_FIELDS]
        windows: list[ClipWindow[Any]] = []
        backwards = 0
        for i, ts in enumerate(batch.capture_ts_ns):
            seq = batch.first_seq + i
            if seq > self.newest_seq:   # the rule: capture times never go back along the sequence
                if ts < self.newest_seq_ts:
                    ts, backwards = self.newest_seq_ts, backwards + 1
                self.newest_seq, self.newest_seq_ts = seq, ts
            for w in self.windows.add(seq, ts, payloads.get(i)):   # each window holds its frames (retained)
                windows.append(w)
                self.pending_starts.append(w.start_seq)
        dropped = {reason: getattr(stats, name) - old for (name, reason), old in zip(_DROP_FIELDS, before)
                   if getattr(stats, name) > old}
        return Added(windows, backwards, dropped)

    def resume_point(self) -> int | None:
        """The sequence number a replay must start from: the active smoothing segment's first
        window, else the oldest window waiting for inference, else the open window."""
        candidates = [x for x in (self.smoother.resume_start,
                                  self.pending_starts[0] if self.pending_starts else None,
                                  self.windows.next_start) if x is not None]
        return min(candidates) if candidates else None


class CameraTable:
    """Every camera epoch: the open ones, one per (partition, camera), and the retired ones (an
    epoch that a newer one ended, kept until its waiting windows are run). A retired epoch is
    held apart because a new epoch can carry the same number (a batch sent again after the fps
    flapped): keyed together, the new one took the old one's place and its waiting windows were
    run against the wrong state (``IndexError`` in ``step``, on every replay)."""

    def __init__(self) -> None:
        self._cameras: dict[CameraKey, Camera] = {}
        self._current: dict[tuple[TopicPartition, str], CameraKey] = {}
        self._retired: list[Camera] = []
        self._open_per_partition: dict[TopicPartition, int] = {}   # cameras with an open epoch

    def open_cameras(self, tp: TopicPartition) -> int:
        """How many cameras of ``tp`` have an open epoch (the limit on camera states counts these)."""
        return self._open_per_partition.get(tp, 0)

    def __getitem__(self, key: CameraKey) -> Camera:
        return self._cameras[key]

    def __iter__(self) -> Iterator[Camera]:
        return iter([*self._cameras.values(), *self._retired])

    def current(self, tp: TopicPartition, camera_id: str) -> Camera | None:
        key = self._current.get((tp, camera_id))
        return None if key is None else self._cameras[key]

    def add(self, cam: Camera) -> Camera:
        if cam.key[:2] not in self._current:
            self._open_per_partition[cam.key[0]] = self.open_cameras(cam.key[0]) + 1
        self._cameras[cam.key] = cam
        self._current[cam.key[:2]] = cam.key
        return cam

    def retire(self, cam: Camera) -> None:
        """``cam`` was ended by a newer epoch but still has windows waiting for inference."""
        self.remove(cam)
        self._retired.append(cam)

    def remove(self, cam: Camera) -> None:
        if self._cameras.get(cam.key) is cam:
            del self._cameras[cam.key]
            if self._current.get(cam.key[:2]) == cam.key:
                del self._current[cam.key[:2]]
                left = self._open_per_partition[cam.key[0]] - 1
                if left:
                    self._open_per_partition[cam.key[0]] = left
                else:
                    del self._open_per_partition[cam.key[0]]
        else:
            self._retired = [c for c in self._retired if c is not cam]

    def drop_partition(self, tp: TopicPartition) -> None:
        for cam in [c for c in self if c.key[0] == tp]:
            self.remove(cam)
            cam.windows.clear()

    def stats(self) -> dict[str, WindowStats]:
        """Window counters per camera (summed over partitions and epochs)."""
        out: dict[str, WindowStats] = {}
        for cam in self:
            cam_id = cam.key[1]
            if cam_id in out:
                total = out[cam_id]
                out[cam_id] = WindowStats(**{f: getattr(total, f) + getattr(cam.windows.stats, f)
                                             for f in total.__dataclass_fields__})
            else:
                out[cam_id] = cam.windows.stats
        return out
