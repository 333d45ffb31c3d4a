"""The service core: frame batches -> per-camera windows -> cross-camera batches -> events.

No Kafka here. The caller feeds a poll's envelopes with :meth:`Pipeline.offer_messages` (tagged
with where they came from), calls :meth:`Pipeline.step` to run due batches, publishes what it returns, and
after the broker acknowledged everything asks :meth:`Pipeline.commit_points` what is safe to
commit.

Offsets: :mod:`stream.core.ledger` turns what was consumed and each camera's resume point into
commit points. Stream epochs: :mod:`stream.core.epochs` decides when a camera's stream starts
again. Both read only the frames, so a replay finds the same windows, epochs and event ids.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from stream.core.cameras import Camera, CameraTable
from stream.core.routing import CameraRouter
from stream.core.ledger import CameraKey, CommitPoints, OffsetLedger, OpenCamera, SourceRef, TopicPartition
from stream.core.limits import LimitsConfig, parse_message
from stream.core.ports import FrameJob, NullMetrics, PipelineMetrics, Predictor
from stream.core.smoothing import Segment, SmoothingConfig, WindowRef
from stream.core.windowing import ClipWindow, WindowConfig
from stream.core.wire import (ActionEvent, EnvelopeError, FrameBatch, LimitExceededError, ProcessingError,
                              WindowPrediction, make_event_id, model_id)

log = logging.getLogger("soccerkd.pipeline")


@dataclass(frozen=True)
class PipelineConfig:
    window: WindowConfig = field(default_factory=WindowConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    max_batch: int = 16
    max_wait_ms: float = 50.0
    raw_predictions: bool = False
    limits: LimitsConfig = field(default_factory=LimitsConfig)


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
    # (batch, ref, its camera, the frames to decode, why that camera epoch opens: None if it is open)
    accepted: list[tuple[FrameBatch, SourceRef, Camera, list[int], str | None]] = field(default_factory=list)
    finish: Callable[[], list[Any]] = list
    seconds: float = 0.0
    rest: list[tuple[bytes, SourceRef]] = field(default_factory=list)   # offered after these are added


@dataclass(frozen=True)
class EmittedEvent:
    event: ActionEvent
    newest_capture_ts_ns: int


@dataclass
class Outputs:
    events: list[EmittedEvent] = field(default_factory=list)
    predictions: list[WindowPrediction] = field(default_factory=list)
    windows: int = 0

    def extend(self, other: "Outputs") -> None:
        self.events += other.events
        self.predictions += other.predictions
        self.windows += other.windows


class Pipeline:
    """Windows, batches, predicts and smooths; tracks what is safe to commit per partition."""

    def __init__(self, predictor: Predictor, *, config: PipelineConfig = PipelineConfig(),
                 metrics: PipelineMetrics | None = None, clock: Callable[[], float] = time.time,
                 perf: Callable[[], float] = time.perf_counter, idle_clock: Callable[[], float] | None = None) -> None:
        self.predictor = predictor
        self.config = config
        self.metrics = metrics or NullMetrics()
        self.clock = clock
        self.perf = perf
        # the clock a camera's silence is measured in (the service's stops while it cannot read)
        self.idle_clock = idle_clock or perf
        self.spec = predictor.input_spec
        self.class_names = tuple(self.spec.class_names)
        self.model_id = model_id(predictor.model_name, predictor.checkpoint_sha256)
        self.cameras = CameraTable()   # every open camera epoch (read-only outside)
        self._ended: list[EmittedEvent] = []   # events of ended epochs, returned by the next step()
        self._pending: deque[tuple[float, Camera, ClipWindow[Any]]] = deque()
        self.ledger = OffsetLedger()
        self.router = CameraRouter(self.cameras, self.ledger, predictor, window=config.window,
                                   smoothing=config.smoothing, limits=config.limits)

    # -- input --------------------------------------------------------------------------------
    def offer_messages(self, items: Sequence[tuple[bytes, SourceRef]]) -> list[Rejected]:
        """Add a poll's envelopes in order (:meth:`begin_offer`, then at once :meth:`finish_offer`);
        returns the ones rejected, to dead-letter."""
        return self.finish_offer(self.begin_offer(items))

    def begin_offer(self, items: Sequence[tuple[bytes, SourceRef]]) -> "Offer":
        """Parse a poll's envelopes and start decoding, in one batch, the frames some window will
        use (not duplicates, replays, late or skipped frames); :meth:`finish_offer` adds them. In
        between the caller may run :meth:`step`, overlapping inference with decoding, nothing
        else. The offer ends early before a message that may start an epoch (``Offer.rest``)."""
        t0 = self.perf()
        offer = Offer(refs=[ref for _, ref in items])
        jobs: list[FrameJob] = []
        previous: dict[tuple[TopicPartition, str], FrameBatch | None] = {}   # each camera's last one here
        for n, (value, ref) in enumerate(items):
            try:
                batch = parse_message(value, ref.key, self.config.limits, window_stride=self.config.window.window_stride)
            except EnvelopeError as exc:
                offer.rejected.append(Rejected(ref, exc))
                continue
            except MemoryError:
                raise
            except Exception as exc:   # whatever else one message can cause stays with that message
                offer.rejected.append(Rejected(ref, ProcessingError(f"{type(exc).__name__}: {exc}")))
                continue
            key = (ref.tp, batch.camera_id)
            if key not in previous and self.router.refused(batch, ref.tp):
                offer.rejected.append(Rejected(ref, LimitExceededError(
                    f"partition {ref.partition} already holds {self.cameras.open_cameras(ref.tp)} cameras, "
                    f"limits.max_cameras_per_partition={self.config.limits.max_cameras_per_partition}; "
                    f"camera {batch.camera_id[:64]!r} is new")))
                continue
            if key in previous and (previous[key] is None or self.router.may_start_epoch(previous[key], batch, ref.tp)):
                offer.refs, offer.rest = offer.refs[:n], list(items[n:])   # decided once the rest is added
                break
            cam, opens = self.router.route(batch, ref.tp)
            if cam is None:   # frames of an epoch that is over: a replay, or late for the open one
                self.metrics.add_dropped(opens or "replayed", len(batch.frames))
                continue
            previous[key] = None if opens else batch   # after an epoch opens here, the camera waits
            todo = cam.needed_frames(batch)
            jobs.extend(FrameJob(batch.frames[i], batch.width, batch.height) for i in todo)
            offer.accepted.append((batch, ref, cam, todo, opens))
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
            self.ledger.consumed(ref)
        rejected = list(offer.rejected)
        pos = 0
        for batch, ref, cam, todo, opens in offer.accepted:
            mine = payloads[pos:pos + len(todo)]
            pos += len(todo)
            error = next((p for p in mine if isinstance(p, EnvelopeError)), None)
            if error is not None:   # a camera epoch it would have opened is never installed
                self.predictor.release([p for p in mine if not isinstance(p, EnvelopeError)])
                rejected.append(Rejected(ref, error))
                continue
            if opens is not None:
                self._open(cam, opens)
            self._add(batch, ref, cam, dict(zip(todo, mine)))
        self.metrics.observe_stage("preprocess", self.perf() - t0)
        self.metrics.set_inflight(len(self._pending))
        rejected.sort(key=lambda r: offer.refs.index(r.ref))
        return rejected + (self.offer_messages(offer.rest) if offer.rest else [])

    def offer_bytes(self, value: bytes, ref: SourceRef) -> None:
        """Add one envelope; raises its :class:`EnvelopeError` if it is rejected."""
        rejected = self.offer_messages([(value, ref)])
        if rejected:
            raise rejected[0].error

    def skip(self, ref: SourceRef) -> None:
        """Mark a message as handled without frames (e.g. dead-lettered)."""
        self.ledger.consumed(ref)

    def _add(self, batch: FrameBatch, ref: SourceRef, cam: Camera, payloads: dict[int, Any]) -> None:
        if abs(max(batch.capture_ts_ns) / 1e9 - self.clock()) > self.config.limits.max_clock_skew_s:
            self.metrics.add_timestamp_anomaly("clock_skew", len(batch.frames))   # counted, kept
        now = self.perf()
        added = cam.add(batch, ref.offset, payloads, now=self.idle_clock())
        for w in added.windows:
            self._pending.append((now, cam, w))
        if added.backwards:
            self.metrics.add_timestamp_anomaly("backwards", added.backwards)
        self.metrics.add_frames(len(batch.frames))
        for reason, n in added.dropped.items():
            self.metrics.add_dropped(reason, n)

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
        out = Outputs(events=self._ended)
        self._ended = []
        if not self._pending or not (force or self.due()):
            return out
        taken = [self._pending.popleft() for _ in range(min(self.config.max_batch, len(self._pending)))]
        take = [w for _, _, w in taken]
        t0 = self.perf()
        probs = self.predictor.predict(take)
        self.metrics.observe_stage("inference", self.perf() - t0)
        for window in take:
            self.predictor.release(window.frames)
        self.metrics.observe_batch(len(take))
        self.metrics.add_windows(len(take))
        for (_, cam, window), p in zip(taken, probs):
            key = cam.key
            cam.pending_starts.popleft()
            ref = _window_ref(window)
            if self.config.raw_predictions:
                out.predictions.append(_prediction(window, ref, p, self.class_names, self.predictor))
            for seg in cam.smoother.push(ref, [float(v) for v in p]):
                out.events.append(_event(key, seg, self.predictor, self.model_id, self.clock()))
            if cam.ended and not cam.pending_starts:
                out.events += self._finish_epoch(cam)
        out.windows = len(take)
        self.metrics.set_inflight(len(self._pending))
        return out

    def close_idle(self) -> Outputs:
        """Close and evict every camera that has had no message for ``windows.idle_timeout_s``
        (on the idle clock) and has no window waiting for inference: its open segment ends at its
        last window and is returned as an event, its incomplete window is dropped, and it no
        longer holds its partition's commit point back. Its next batch, captured at least
        ``windows.epoch_gap_s`` later, starts an epoch anyway (:mod:`stream.core.epochs`), so
        the eviction changes no event id."""
        out = Outputs()
        timeout = self.config.window.idle_timeout_s
        now = self.idle_clock()
        idle = [cam for cam in self.cameras if now - cam.last_arrival >= timeout and not cam.pending_starts]
        for cam in idle:
            out.events += self._finish_epoch(cam)
            self.ledger.forget_hint(*cam.key[:2])
        if idle:
            self.metrics.add_idle_evictions(len(idle))
        return out

    def drain(self) -> Outputs:
        """Run every waiting window (used at shutdown and before a commit on revoke)."""
        total = Outputs()
        while self._pending:
            total.extend(self.step(force=True))
        return total

    def _finish_epoch(self, cam: Camera) -> list[EmittedEvent]:
        """Close a camera epoch's open segment at its last window and drop its state."""
        self.cameras.remove(cam)
        cam.windows.clear()
        return self._close_segment(cam)

    def _close_segment(self, cam: Camera) -> list[EmittedEvent]:
        """End the camera epoch's open segment at its last window: its event, if long enough."""
        return [_event(cam.key, seg, self.predictor, self.model_id, self.clock()) for seg in cam.smoother.close()]

    def swap_model(self, swap: Callable[[], None]) -> Outputs:
        """Change the model between two batches: every open segment ends at its last window and is
        returned as the old model's event (an event is one model's, and its id names that model),
        then ``swap()`` makes the predictor serve the new model, whose ids the next events carry.
        Windows still waiting are run by the new model: each window by one model, never a mix."""
        out = Outputs(events=[e for cam in self.cameras for e in self._close_segment(cam)])
        swap()
        self.model_id = model_id(self.predictor.model_name, self.predictor.checkpoint_sha256)
        return out

    # -- offsets, rebalance -------------------------------------------------------------------
    def commit_points(self) -> CommitPoints:
        """``{(topic, partition): (offset, metadata)}`` safe to commit once outputs are acked
        (see :meth:`stream.core.ledger.OffsetLedger.commit_points`)."""
        return self.ledger.commit_points(OpenCamera(cam.key, cam.resume_point(), cam.messages)
                                         for cam in self.cameras)

    def restore(self, tp: TopicPartition, metadata: str | None) -> None:
        """Apply a committed metadata string (resume points) for a newly assigned partition."""
        self.ledger.restore(tp, metadata)

    def drop_partition(self, tp: TopicPartition) -> int:
        """Forget every camera of ``tp`` (open windows, waiting windows, smoother), and only those.
        Returns the number of waiting windows dropped; the new owner rebuilds them from the
        commit point."""
        dropped = [w for _, cam, w in self._pending if cam.key[0] == tp]
        for window in dropped:
            self.predictor.release(window.frames)
        self._pending = deque(item for item in self._pending if item[1].key[0] != tp)
        self.cameras.drop_partition(tp)
        self.ledger.drop(tp)
        self.metrics.set_inflight(len(self._pending))
        return len(dropped)

    def _open(self, cam: Camera, reason: str) -> None:
        """Install a camera epoch; a new one ends the camera's open epoch (closed once its waiting
        windows are run)."""
        old = self.cameras.current(*cam.key[:2])
        if old is not None:
            log.info("camera %r on %s[%d]: new stream epoch %d (%s)", cam.key[1], *cam.key[0], cam.key[2], reason)
            self.metrics.add_epoch(reason)
            old.ended = True
            old.windows.clear()   # its open window will not complete
            if not old.pending_starts:
                self._ended += self._finish_epoch(old)
            else:
                self.cameras.retire(old)
        self.cameras.add(cam)



def _window_ref(window: ClipWindow[Any]) -> WindowRef:
    ts = window.capture_ts_ns
    return WindowRef(start_seq=window.start_seq, end_seq=window.end_seq, start_capture_ts_ns=ts[0],
                     end_capture_ts_ns=ts[-1], newest_capture_ts_ns=window.newest_capture_ts_ns,
                     max_frame_gap_ns=max((b - a for a, b in zip(ts, ts[1:])), default=0))


def _prediction(window: ClipWindow[Any], ref: WindowRef, p: Sequence[float], class_names: Sequence[str],
                predictor: Predictor) -> WindowPrediction:
    return WindowPrediction(camera_id=window.camera_id, start_seq=window.start_seq, end_seq=window.end_seq,
                            end_capture_ts_ns=ref.end_capture_ts_ns,
                            probabilities={n: float(v) for n, v in zip(class_names, p)},
                            model_name=predictor.model_name, checkpoint_sha256=predictor.checkpoint_sha256,
                            filled_frames=window.filled)


def _event(key: CameraKey, seg: Segment, predictor: Predictor, model: str, emitted_at: float) -> EmittedEvent:
    """The event of a finished segment; its id is a function of the camera, epoch, frame range
    and model only."""
    _, camera_id, epoch = key
    start, end = seg.first.start_seq, seg.last.end_seq
    ev = ActionEvent(event_id=make_event_id(camera_id, start, end, model, epoch), camera_id=camera_id,
                     label=seg.label, confidence=round(seg.confidence, 6), start_seq=start, end_seq=end,
                     start_capture_ts_ns=seg.first.start_capture_ts_ns, end_capture_ts_ns=seg.last.end_capture_ts_ns,
                     model_name=predictor.model_name, checkpoint_sha256=predictor.checkpoint_sha256,
                     emitted_at=emitted_at, num_windows=seg.num_windows, epoch=epoch)
    return EmittedEvent(ev, seg.newest_capture_ts_ns)
