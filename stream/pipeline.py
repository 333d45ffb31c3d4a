"""The service core: frame batches -> per-camera windows -> cross-camera batches -> events.

No Kafka here. The caller feeds envelopes with :meth:`Pipeline.offer_bytes` (tagged with where
they came from), calls :meth:`Pipeline.step` to run due batches, publishes what it returns, and
after the broker acknowledged everything asks :meth:`Pipeline.commit_points` what is safe to
commit.

**Commit point.** For each camera the *resume point* R is the start of the oldest window whose
events are not final: the active smoothing segment's first window, else the oldest window waiting
for inference, else the open (incomplete) window. Replaying a camera from R rebuilds the same
windows and the same smoother state, so the same event ids. A partition's committable offset is
the offset of the oldest message (of any of its cameras) holding a frame ``>= R``; the metadata
stores every camera's R so that, after a restart or rebalance, frames before R are skipped as
replays rather than opening windows that were already handled.
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

from stream.inference import Predictor
from stream.messages import (ActionEvent, FrameBatch, WindowPrediction, decode_frame_batch, decode_image,
                             make_event_id, model_id)
from stream.smoothing import Segment, Smoother, SmoothingConfig, WindowRef
from stream.windowing import CameraWindows, ClipWindow, WindowConfig, WindowStats

TopicPartition = tuple[str, int]
_METADATA_VERSION = 1


class PipelineMetrics(Protocol):
    """The few observations the core reports (``stream.metrics.Metrics`` implements them)."""

    def observe_stage(self, stage: str, seconds: float) -> None: ...
    def add_frames(self, n: int) -> None: ...
    def add_windows(self, n: int) -> None: ...
    def add_dropped(self, reason: str, n: int) -> None: ...
    def observe_batch(self, n: int) -> None: ...
    def set_inflight(self, n: int) -> None: ...


class NullMetrics:
    def observe_stage(self, stage: str, seconds: float) -> None: pass
    def add_frames(self, n: int) -> None: pass
    def add_windows(self, n: int) -> None: pass
    def add_dropped(self, reason: str, n: int) -> None: pass
    def observe_batch(self, n: int) -> None: pass
    def set_inflight(self, n: int) -> None: pass


@dataclass(frozen=True)
class SourceRef:
    """Where a message came from (the frames topic, partition and offset)."""

    topic: str
    partition: int
    offset: int

    @property
    def tp(self) -> TopicPartition:
        return (self.topic, self.partition)


@dataclass(frozen=True)
class PipelineConfig:
    window: WindowConfig = field(default_factory=WindowConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    max_batch: int = 16
    max_wait_ms: float = 50.0
    raw_predictions: bool = False
    decode_threads: int = 1


@dataclass(frozen=True)
class EmittedEvent:
    event: ActionEvent
    newest_capture_ts_ns: int


@dataclass
class Outputs:
    events: list[EmittedEvent] = field(default_factory=list)
    predictions: list[WindowPrediction] = field(default_factory=list)
    windows: int = 0


@dataclass
class _Camera:
    windows: CameraWindows[Any]
    smoother: Smoother
    tp: TopicPartition
    ledger: deque[tuple[int, int]] = field(default_factory=deque)   # (offset, last seq) of messages
    pending_starts: deque[int] = field(default_factory=deque)


_DROP_FIELDS = (("duplicates", "duplicate"), ("late", "late"), ("gap_frames", "gap"))


class Pipeline:
    """Windows, batches, predicts and smooths; tracks what is safe to commit per partition."""

    def __init__(self, predictor: Predictor, *, config: PipelineConfig = PipelineConfig(),
                 metrics: PipelineMetrics | None = None, clock: Callable[[], float] = time.time,
                 perf: Callable[[], float] = time.perf_counter) -> None:
        self.predictor = predictor
        self.config = config
        self.metrics = metrics or NullMetrics()
        self.clock = clock
        self.perf = perf
        self.spec = predictor.input_spec
        self.class_names = tuple(self.spec.class_names)
        self.model_id = model_id(predictor.model_name, predictor.checkpoint_sha256)
        self._cameras: dict[str, _Camera] = {}
        self._pending: deque[tuple[float, ClipWindow[Any]]] = deque()
        self._next_offset: dict[TopicPartition, int] = {}
        self._hints: dict[TopicPartition, dict[str, int]] = {}
        self._pool = (concurrent.futures.ThreadPoolExecutor(config.decode_threads, thread_name_prefix="decode")
                      if config.decode_threads > 1 else None)

    def _map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        # OpenCV releases the GIL in imdecode/resize, so threads give real parallelism here.
        if self._pool is None or len(items) < 2:
            return [fn(x) for x in items]
        return list(self._pool.map(fn, items))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)

    # -- input --------------------------------------------------------------------------------
    def decode(self, value: bytes) -> tuple[FrameBatch, list[Any]]:
        """Envelope + JPEG decoding with every validation; raises :class:`EnvelopeError` subclasses."""
        t0 = self.perf()
        batch = decode_frame_batch(value)
        decode = functools.partial(decode_image, width=batch.width, height=batch.height)
        images = self._map(decode, batch.frames)
        self.metrics.observe_stage("decode", self.perf() - t0)
        return batch, images

    def offer_bytes(self, value: bytes, ref: SourceRef) -> FrameBatch:
        """Decode and add one message. On an :class:`EnvelopeError` no state changes except that
        the offset counts as consumed (the caller dead-letters the message)."""
        self._consumed(ref)
        batch, images = self.decode(value)
        self.offer(batch, images, ref)
        return batch

    def skip(self, ref: SourceRef) -> None:
        """Mark a message as handled without frames (e.g. dead-lettered)."""
        self._consumed(ref)

    def offer(self, batch: FrameBatch, images: Sequence[Any], ref: SourceRef) -> None:
        """Add decoded frames (RGB arrays, one per frame of ``batch``)."""
        self._consumed(ref)
        cam = self._camera(batch.camera_id, ref.tp, batch.source_fps)
        cam.ledger.append((ref.offset, batch.last_seq))
        before = _snapshot(cam.windows.stats)
        # Frames no window will use are not preprocessed. The set of needed frames only shrinks as
        # windows are emitted, so deciding it before adding the batch's frames is safe.
        todo = [i for i in range(len(images)) if cam.windows.classify(batch.first_seq + i) is None
                and cam.windows.needed(batch.first_seq + i)]
        t0 = self.perf()
        payloads = dict(zip(todo, self._map(self.predictor.preprocess_frame, [images[i] for i in todo])))
        self.metrics.observe_stage("preprocess", self.perf() - t0)
        now = self.perf()
        for i, ts in enumerate(batch.capture_ts_ns):
            for w in cam.windows.add(batch.first_seq + i, ts, payloads.get(i)):
                self._pending.append((now, w))
                cam.pending_starts.append(w.start_seq)
        after = _snapshot(cam.windows.stats)
        self.metrics.add_frames(len(images))
        for name, reason in _DROP_FIELDS:
            if after[name] > before[name]:
                self.metrics.add_dropped(reason, after[name] - before[name])
        self.metrics.set_inflight(len(self._pending))

    # -- inference ----------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Windows complete and waiting for inference."""
        return len(self._pending)

    def due(self) -> bool:
        """A batch should run now: it is full, or its oldest window has waited ``max_wait_ms``."""
        if not self._pending:
            return False
        if len(self._pending) >= self.config.max_batch:
            return True
        return (self.perf() - self._pending[0][0]) * 1000.0 >= self.config.max_wait_ms

    def step(self, *, force: bool = False) -> Outputs:
        """Run one batch if due (or if ``force`` and any window waits); returns its outputs."""
        out = Outputs()
        if not self._pending or not (force or self.due()):
            return out
        take = [self._pending.popleft()[1] for _ in range(min(self.config.max_batch, len(self._pending)))]
        t0 = self.perf()
        probs = self.predictor.predict(take)
        self.metrics.observe_stage("inference", self.perf() - t0)
        self.metrics.observe_batch(len(take))
        self.metrics.add_windows(len(take))
        for window, p in zip(take, probs):
            cam = self._cameras[window.camera_id]
            cam.pending_starts.popleft()
            ref = WindowRef(start_seq=window.start_seq, end_seq=window.end_seq,
                            start_capture_ts_ns=window.capture_ts_ns[0],
                            end_capture_ts_ns=window.capture_ts_ns[-1],
                            newest_capture_ts_ns=window.newest_capture_ts_ns)
            if self.config.raw_predictions:
                out.predictions.append(WindowPrediction(
                    camera_id=window.camera_id, start_seq=window.start_seq, end_seq=window.end_seq,
                    end_capture_ts_ns=ref.end_capture_ts_ns,
                    probabilities={n: float(v) for n, v in zip(self.class_names, p)},
                    model_name=self.predictor.model_name, checkpoint_sha256=self.predictor.checkpoint_sha256,
                    filled_frames=window.filled))
            for seg in cam.smoother.push(ref, [float(v) for v in p]):
                out.events.append(self._event(window.camera_id, seg))
        out.windows = len(take)
        self.metrics.set_inflight(len(self._pending))
        return out

    def drain(self) -> Outputs:
        """Run every waiting window (used at shutdown and before a commit on revoke)."""
        total = Outputs()
        while self._pending:
            out = self.step(force=True)
            total.events += out.events
            total.predictions += out.predictions
            total.windows += out.windows
        return total

    def _event(self, camera_id: str, seg: Segment) -> EmittedEvent:
        start, end = seg.first.start_seq, seg.last.end_seq
        ev = ActionEvent(event_id=make_event_id(camera_id, start, end, self.model_id), camera_id=camera_id,
                         label=seg.label, confidence=round(seg.confidence, 6), start_seq=start, end_seq=end,
                         start_capture_ts_ns=seg.first.start_capture_ts_ns,
                         end_capture_ts_ns=seg.last.end_capture_ts_ns, model_name=self.predictor.model_name,
                         checkpoint_sha256=self.predictor.checkpoint_sha256, emitted_at=self.clock(),
                         num_windows=seg.num_windows)
        return EmittedEvent(ev, seg.newest_capture_ts_ns)

    # -- offsets, rebalance -------------------------------------------------------------------
    def resume_point(self, camera_id: str) -> int | None:
        """Sequence number replay must start from for ``camera_id`` (see the module docstring)."""
        cam = self._cameras[camera_id]
        candidates = [x for x in (cam.smoother.resume_start,
                                  cam.pending_starts[0] if cam.pending_starts else None,
                                  cam.windows.next_start) if x is not None]
        return min(candidates) if candidates else None

    def commit_points(self) -> dict[TopicPartition, tuple[int, str]]:
        """``{(topic, partition): (offset, metadata)}`` safe to commit once outputs are acked."""
        result: dict[TopicPartition, tuple[int, str]] = {}
        for tp, next_offset in self._next_offset.items():
            offset = next_offset
            resume = dict(self._hints.get(tp, {}))
            for cam_id, cam in self._cameras.items():
                if cam.tp != tp:
                    continue
                r = self.resume_point(cam_id)
                if r is None:
                    continue
                resume[cam_id] = r
                while cam.ledger and cam.ledger[0][1] < r:
                    cam.ledger.popleft()
                if cam.ledger:
                    offset = min(offset, min(o for o, _ in cam.ledger))
            meta = json.dumps({"v": _METADATA_VERSION, "resume": resume}, sort_keys=True, separators=(",", ":"))
            result[tp] = (offset, meta)
        return result

    def restore(self, tp: TopicPartition, metadata: str | None) -> None:
        """Apply a committed metadata string (resume points) for a newly assigned partition."""
        hints: dict[str, int] = {}
        if metadata:
            try:
                data = json.loads(metadata)
                if isinstance(data, dict) and data.get("v") == _METADATA_VERSION:
                    hints = {str(k): int(v) for k, v in dict(data.get("resume", {})).items()}
            except (ValueError, TypeError):
                hints = {}
        self._hints[tp] = hints

    def drop_partition(self, tp: TopicPartition) -> int:
        """Forget every camera of ``tp`` (open windows, waiting windows, smoother). Returns the
        number of waiting windows dropped; the new owner rebuilds them from the commit point."""
        gone = {cid for cid, cam in self._cameras.items() if cam.tp == tp}
        before = len(self._pending)
        self._pending = deque((t, w) for t, w in self._pending if w.camera_id not in gone)
        for cid in gone:
            del self._cameras[cid]
        self._next_offset.pop(tp, None)
        self._hints.pop(tp, None)
        self.metrics.set_inflight(len(self._pending))
        return before - len(self._pending)

    def assigned(self) -> list[TopicPartition]:
        return sorted(self._next_offset)

    def stats(self) -> dict[str, WindowStats]:
        return {cid: cam.windows.stats for cid, cam in self._cameras.items()}

    def _consumed(self, ref: SourceRef) -> None:
        nxt = self._next_offset.get(ref.tp, -1)
        if ref.offset + 1 > nxt:
            self._next_offset[ref.tp] = ref.offset + 1

    def _camera(self, camera_id: str, tp: TopicPartition, fps: float) -> _Camera:
        cam = self._cameras.get(camera_id)
        if cam is None:
            windows: CameraWindows[Any] = CameraWindows(camera_id, self.spec.clip, self.config.window)
            windows.set_source_fps(fps)
            hint = self._hints.get(tp, {}).get(camera_id)
            if hint is not None:
                windows.resume_at(hint)
            cam = _Camera(windows=windows, smoother=Smoother(self.class_names, self.config.smoothing), tp=tp)
            self._cameras[camera_id] = cam
        return cam


def _snapshot(stats: WindowStats) -> dict[str, int]:
    return {name: getattr(stats, name) for name, _ in _DROP_FIELDS}
