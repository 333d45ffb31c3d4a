"""The service core: frame batches -> per-camera windows -> cross-camera batches -> events.

No Kafka here. The caller feeds a poll's envelopes with :meth:`Pipeline.offer_messages` (tagged
with where they came from), calls :meth:`Pipeline.step` to run due batches, publishes what it returns, and
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

import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

from stream.inference import Predictor
from stream.messages import (ActionEvent, EnvelopeError, FrameBatch, WindowPrediction, decode_frame_batch,
                             make_event_id, model_id)
from stream.preprocess import FrameJob
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


@dataclass(frozen=True)
class Rejected:
    """A message the pipeline refused (the caller dead-letters it); its offset counts as consumed."""

    ref: SourceRef
    error: EnvelopeError


@dataclass
class Offer:
    """A poll's envelopes between :meth:`Pipeline.begin_offer` and :meth:`Pipeline.finish_offer`."""

    refs: list[SourceRef]
    rejected: list[Rejected] = field(default_factory=list)
    accepted: list[tuple[FrameBatch, SourceRef, "_Camera", list[int]]] = field(default_factory=list)
    finish: Callable[[], list[Any]] = list
    seconds: float = 0.0


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

    # -- input --------------------------------------------------------------------------------
    def offer_messages(self, items: Sequence[tuple[bytes, SourceRef]]) -> list[Rejected]:
        """Add a poll's worth of envelopes, in order; returns the ones rejected (to dead-letter).

        The same as :meth:`begin_offer` followed at once by :meth:`finish_offer`.
        """
        return self.finish_offer(self.begin_offer(items))

    def begin_offer(self, items: Sequence[tuple[bytes, SourceRef]]) -> "Offer":
        """Parse a poll's envelopes and start decoding their frames, in one batch
        (:meth:`Predictor.start_prepare`); :meth:`finish_offer` adds them to the windows.

        In between, the caller may run :meth:`step` (inference on windows already formed), which
        overlaps with the decoding; nothing else may change the pipeline. Only frames some window
        will use are decoded: duplicates, replays, late frames and frames a frame stride skips
        are never touched (so a corrupt frame there is not noticed either).
        """
        t0 = self.perf()
        offer = Offer(refs=[ref for _, ref in items])
        jobs: list[FrameJob] = []
        for value, ref in items:
            try:
                batch = decode_frame_batch(value)
            except EnvelopeError as exc:
                offer.rejected.append(Rejected(ref, exc))
                continue
            cam = self._camera(batch.camera_id, ref.tp, batch.source_fps)
            # The set of needed frames only shrinks as windows are emitted, so deciding it before
            # adding this poll's frames is safe (at worst a frame is decoded and then let go).
            windows, first = cam.windows, batch.first_seq
            todo = [i for i in range(len(batch.frames))
                    if windows.classify(first + i) is None and windows.needed(first + i)]
            jobs.extend(FrameJob(batch.frames[i], batch.width, batch.height) for i in todo)
            offer.accepted.append((batch, ref, cam, todo))
        offer.finish = self.predictor.start_prepare(jobs) if jobs else list
        offer.seconds = self.perf() - t0
        return offer

    def finish_offer(self, offer: "Offer") -> list[Rejected]:
        """Wait for the offer's frames and add them to their cameras' windows, message by message.
        A rejected message changes no state except that its offset counts as consumed."""
        t0 = self.perf()
        payloads = offer.finish()
        self.metrics.observe_stage("decode", offer.seconds + self.perf() - t0)   # main-thread time
        t0 = self.perf()
        for ref in offer.refs:
            self._consumed(ref)
        rejected = list(offer.rejected)
        pos = 0
        for batch, ref, cam, todo in offer.accepted:
            mine = payloads[pos:pos + len(todo)]
            pos += len(todo)
            error = next((p for p in mine if isinstance(p, EnvelopeError)), None)
            if error is not None:
                self.predictor.release([p for p in mine if not isinstance(p, EnvelopeError)])
                rejected.append(Rejected(ref, error))
                continue
            self._add(batch, ref, cam, dict(zip(todo, mine)))
        self.metrics.observe_stage("preprocess", self.perf() - t0)
        self.metrics.set_inflight(len(self._pending))
        rejected.sort(key=lambda r: offer.refs.index(r.ref))
        return rejected

    def offer_bytes(self, value: bytes, ref: SourceRef) -> None:
        """Add one envelope; raises its :class:`EnvelopeError` if it is rejected."""
        rejected = self.offer_messages([(value, ref)])
        if rejected:
            raise rejected[0].error

    def skip(self, ref: SourceRef) -> None:
        """Mark a message as handled without frames (e.g. dead-lettered)."""
        self._consumed(ref)

    def _add(self, batch: FrameBatch, ref: SourceRef, cam: _Camera, payloads: dict[int, Any]) -> None:
        cam.ledger.append((ref.offset, batch.last_seq))
        stats = cam.windows.stats
        before = [getattr(stats, name) for name, _ in _DROP_FIELDS]
        now = self.perf()
        add, first = cam.windows.add, batch.first_seq
        for i, ts in enumerate(batch.capture_ts_ns):
            for w in add(first + i, ts, payloads.get(i)):   # each window holds its frames (retained)
                self._pending.append((now, w))
                cam.pending_starts.append(w.start_seq)
        self.metrics.add_frames(len(batch.frames))
        for (name, reason), old in zip(_DROP_FIELDS, before):
            new = getattr(stats, name)
            if new > old:
                self.metrics.add_dropped(reason, new - old)

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
        for window in take:
            self.predictor.release(window.frames)
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
        kept: deque[tuple[float, ClipWindow[Any]]] = deque()
        for t, w in self._pending:
            if w.camera_id in gone:
                self.predictor.release(w.frames)
            else:
                kept.append((t, w))
        self._pending = kept
        for cid in gone:
            self._cameras.pop(cid).windows.clear()
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
            windows: CameraWindows[Any] = CameraWindows(camera_id, self.spec.clip, self.config.window,
                                                        retain=self.predictor.retain, release=self.predictor.release)
            windows.set_source_fps(fps)
            hint = self._hints.get(tp, {}).get(camera_id)
            if hint is not None:
                windows.resume_at(hint)
            cam = _Camera(windows=windows, smoother=Smoother(self.class_names, self.config.smoothing), tp=tp)
            self._cameras[camera_id] = cam
        return cam

