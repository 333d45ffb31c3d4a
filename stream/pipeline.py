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

**Stream epochs.** Camera state is kept per (partition, camera, epoch). A camera's first epoch
is 0; a batch starts a new epoch, numbered by the capture time (ns) of its first frame, when

* its fps differs from the epoch's (fps is pinned for the life of an epoch, so window
  positions, and so event ids, depend only on the frames);
* its first sequence number jumps more than ``windows.max_seq_jump`` past the newest
  (a forged or broken number does not blind the camera: the next real batch starts another
  epoch by the next rule);
* all its frames lie before the open window yet it was captured after the newest frame (an
  ingester restarted at 0: ``--start-seq`` is not needed).

The old epoch's open segment is closed at its last window once its waiting windows are run,
then its state is dropped. Event ids of epochs other than 0 include the epoch, and events carry
it, so repeated sequence numbers never collide. The epoch is part of the resume metadata, and
the rules depend only on the frames, so a replay finds the same epochs and the same ids.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

from stream import resume
from stream.inference import Predictor
from stream.messages import (ActionEvent, EmptyValueError, EnvelopeError, FrameBatch, KeyMismatchError,
                             LimitExceededError, ProcessingError, WindowPrediction,
                             decode_frame_batch, make_event_id, model_id)
from stream.preprocess import FrameJob
from stream.smoothing import Segment, Smoother, SmoothingConfig, WindowRef
from stream.windowing import CameraWindows, ClipWindow, WindowConfig, WindowStats

log = logging.getLogger("soccerkd.pipeline")
TopicPartition = tuple[str, int]
CameraKey = tuple[TopicPartition, str, int]   # (partition, camera, epoch): Kafka orders a partition only


class PipelineMetrics(Protocol):
    """The few observations the core reports (``stream.metrics.Metrics`` implements them)."""

    def observe_stage(self, stage: str, seconds: float) -> None: ...
    def add_frames(self, n: int) -> None: ...
    def add_windows(self, n: int) -> None: ...
    def add_dropped(self, reason: str, n: int) -> None: ...
    def observe_batch(self, n: int) -> None: ...
    def set_inflight(self, n: int) -> None: ...
    def add_idle_evictions(self, n: int) -> None: ...
    def add_epoch(self, reason: str) -> None: ...
    def add_timestamp_anomaly(self, kind: str, n: int) -> None: ...


class NullMetrics:
    def observe_stage(self, stage: str, seconds: float) -> None: pass
    def add_frames(self, n: int) -> None: pass
    def add_windows(self, n: int) -> None: pass
    def add_dropped(self, reason: str, n: int) -> None: pass
    def observe_batch(self, n: int) -> None: pass
    def set_inflight(self, n: int) -> None: pass
    def add_idle_evictions(self, n: int) -> None: pass
    def add_epoch(self, reason: str) -> None: pass
    def add_timestamp_anomaly(self, kind: str, n: int) -> None: pass


@dataclass(frozen=True)
class SourceRef:
    """Where a message came from (the frames topic, partition and offset) and its record key
    (``None``: not checked, as in tests; the service always passes the key, ``b""`` for null)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = field(default=None, compare=False)

    @property
    def tp(self) -> TopicPartition:
        return (self.topic, self.partition)


@dataclass(frozen=True)
class LimitsConfig:
    """What one frames message may ask of the service, checked from its envelope before anything
    is decoded (each frame's own JPEG header must then agree with the envelope)."""

    max_pixels: int = 4096 * 2304           # per frame: 4K UHD and a little more
    max_aspect_ratio: float = 8.0           # longer side / shorter side
    max_decoded_bytes: int = 512 * 1024 * 1024   # RGB bytes of all the frames of one message
    # capture times further than this from the service's wall clock are counted (clock_skew); a
    # file sent with --pacing fast runs ahead of the wall clock by up to its length
    max_clock_skew_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.max_pixels < 1 or self.max_aspect_ratio < 1 or self.max_decoded_bytes < 1 or self.max_clock_skew_s <= 0:
            from soccerkd.errors import ConfigError

            raise ConfigError(f"limits must be positive (max_aspect_ratio >= 1), got {self}")

    def check(self, batch: FrameBatch) -> None:
        w, h = batch.width, batch.height
        if w * h > self.max_pixels:
            raise LimitExceededError(f"{w}x{h} frames have {w * h} pixels, over limits.max_pixels={self.max_pixels}")
        if max(w, h) > self.max_aspect_ratio * min(w, h):
            raise LimitExceededError(f"{w}x{h} frames have an aspect ratio over limits.max_aspect_ratio="
                                     f"{self.max_aspect_ratio:g}")
        decoded = w * h * 3 * len(batch.frames)
        if decoded > self.max_decoded_bytes:
            raise LimitExceededError(f"{len(batch.frames)} frames of {w}x{h} decode to {decoded} bytes, over "
                                     f"limits.max_decoded_bytes={self.max_decoded_bytes}")


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
    key: CameraKey
    ledger: deque[tuple[int, int]] = field(default_factory=deque)   # (offset, last seq) of messages
    pending_starts: deque[int] = field(default_factory=deque)
    last_arrival: float = 0.0   # perf() when its last message was added
    fps: float = 0.0            # pinned for the epoch
    newest_ts: int = 0          # capture time of the newest frame added
    newest_seq: int = -1        # highest sequence number added, and its capture time
    newest_seq_ts: int = 0
    ended: bool = False         # a newer epoch started: finish the waiting windows, then drop


_DROP_FIELDS = (("duplicates", "duplicate"), ("late", "late"), ("gap_frames", "gap"), ("replayed", "replayed"))


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
        self._cameras: dict[CameraKey, _Camera] = {}
        self._current: dict[tuple[TopicPartition, str], CameraKey] = {}   # each camera's newest epoch
        self._ended: list[EmittedEvent] = []   # events of ended epochs, returned by the next step()
        self._pending: deque[tuple[float, CameraKey, ClipWindow[Any]]] = deque()
        self._floor: dict[TopicPartition, int] = {}   # the last commit point given out per partition
        self._next_offset: dict[TopicPartition, int] = {}
        self._hints: dict[TopicPartition, dict[str, resume.ResumePoint]] = {}

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
                if value is None:
                    raise EmptyValueError("the record has no value (a tombstone)")
                batch = decode_frame_batch(value)
                if ref.key is not None and ref.key != batch.key:
                    raise KeyMismatchError(f"record key {ref.key[:80]!r} is not the camera id {batch.camera_id!r}; "
                                           f"producers must key frame batches by camera id")
                self.config.limits.check(batch)
            except EnvelopeError as exc:
                offer.rejected.append(Rejected(ref, exc))
                continue
            except MemoryError:
                raise
            except Exception as exc:   # whatever else one message can cause stays with that message
                offer.rejected.append(Rejected(ref, ProcessingError(f"{type(exc).__name__}: {exc}")))
                continue
            cam = self._camera(batch, ref.tp)
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
        cam.last_arrival = self.perf()
        cam.newest_ts = max(cam.newest_ts, max(batch.capture_ts_ns))
        stats = cam.windows.stats
        before = [getattr(stats, name) for name, _ in _DROP_FIELDS]
        now = self.perf()
        add, first = cam.windows.add, batch.first_seq
        skew = self.config.limits.max_clock_skew_s
        if abs(max(batch.capture_ts_ns) / 1e9 - self.clock()) > skew:   # counted, kept (README: Hostile input)
            self.metrics.add_timestamp_anomaly("clock_skew", len(batch.frames))
        backwards = 0
        for i, ts in enumerate(batch.capture_ts_ns):
            seq = first + i
            if seq > cam.newest_seq:   # the rule: capture times never go back along the sequence
                if ts < cam.newest_seq_ts:
                    ts, backwards = cam.newest_seq_ts, backwards + 1
                cam.newest_seq, cam.newest_seq_ts = seq, ts
            for w in add(seq, ts, payloads.get(i)):   # each window holds its frames (retained)
                self._pending.append((now, cam.key, w))
                cam.pending_starts.append(w.start_seq)
        if backwards:
            self.metrics.add_timestamp_anomaly("backwards", backwards)
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
        for (_, key, window), p in zip(taken, probs):
            cam = self._cameras[key]
            cam.pending_starts.popleft()
            ts = window.capture_ts_ns
            ref = WindowRef(start_seq=window.start_seq, end_seq=window.end_seq, start_capture_ts_ns=ts[0],
                            end_capture_ts_ns=ts[-1], newest_capture_ts_ns=window.newest_capture_ts_ns,
                            max_frame_gap_ns=max((b - a for a, b in zip(ts, ts[1:])), default=0))
            if self.config.raw_predictions:
                out.predictions.append(WindowPrediction(
                    camera_id=window.camera_id, start_seq=window.start_seq, end_seq=window.end_seq,
                    end_capture_ts_ns=ref.end_capture_ts_ns,
                    probabilities={n: float(v) for n, v in zip(self.class_names, p)},
                    model_name=self.predictor.model_name, checkpoint_sha256=self.predictor.checkpoint_sha256,
                    filled_frames=window.filled))
            for seg in cam.smoother.push(ref, [float(v) for v in p]):
                out.events.append(self._event(key, seg))
            if cam.ended and not cam.pending_starts:
                out.events += self._finish_epoch(key)
        out.windows = len(take)
        self.metrics.set_inflight(len(self._pending))
        return out

    def close_idle(self) -> Outputs:
        """Close and evict every camera that has had no message for ``windows.idle_timeout_s``
        and has no window waiting for inference: its open segment ends at its last window and
        is returned as an event (the same frame range, so the same id, on a replay), its
        incomplete window is dropped, and it no longer holds its partition's commit point back."""
        out = Outputs()
        timeout = self.config.window.idle_timeout_s
        now = self.perf()
        idle = [key for key, cam in self._cameras.items()
                if now - cam.last_arrival >= timeout and not cam.pending_starts]
        for key in idle:
            out.events += self._finish_epoch(key)
            self._hints.get(key[0], {}).pop(key[1], None)
        if idle:
            self.metrics.add_idle_evictions(len(idle))
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

    def _finish_epoch(self, key: CameraKey) -> list[EmittedEvent]:
        """Close a camera epoch's open segment at its last window and drop its state."""
        cam = self._cameras.pop(key)
        if self._current.get(key[:2]) == key:
            del self._current[key[:2]]
        cam.windows.clear()
        return [self._event(key, seg) for seg in cam.smoother.close()]

    def _event(self, key: CameraKey, seg: Segment) -> EmittedEvent:
        _, camera_id, epoch = key
        start, end = seg.first.start_seq, seg.last.end_seq
        ev = ActionEvent(event_id=make_event_id(camera_id, start, end, self.model_id, epoch), camera_id=camera_id,
                         label=seg.label, confidence=round(seg.confidence, 6), start_seq=start, end_seq=end,
                         start_capture_ts_ns=seg.first.start_capture_ts_ns,
                         end_capture_ts_ns=seg.last.end_capture_ts_ns, model_name=self.predictor.model_name,
                         checkpoint_sha256=self.predictor.checkpoint_sha256, emitted_at=self.clock(),
                         num_windows=seg.num_windows, epoch=epoch)
        return EmittedEvent(ev, seg.newest_capture_ts_ns)

    # -- offsets, rebalance -------------------------------------------------------------------
    def resume_point(self, key: CameraKey) -> int | None:
        """Sequence number replay must start from for a camera (see the module docstring)."""
        cam = self._cameras[key]
        candidates = [x for x in (cam.smoother.resume_start,
                                  cam.pending_starts[0] if cam.pending_starts else None,
                                  cam.windows.next_start) if x is not None]
        return min(candidates) if candidates else None

    def commit_points(self) -> dict[TopicPartition, tuple[int, str]]:
        """``{(topic, partition): (offset, metadata)}`` safe to commit once outputs are acked.

        A partition's point never moves backwards, and its metadata stays within
        :data:`stream.resume.MAX_METADATA_BYTES` (cameras left out are logged: see
        :mod:`stream.resume` for what that costs on replay).
        """
        result: dict[TopicPartition, tuple[int, str]] = {}
        for tp, next_offset in self._next_offset.items():
            offset = next_offset
            entries = {cam: resume.ResumeEntry(cam, r.seq, r.epoch, live=False)
                       for cam, r in self._hints.get(tp, {}).items()}
            for key, cam in sorted(self._cameras.items(), key=lambda kv: kv[0][2], reverse=True):
                if key[0] != tp:
                    continue
                r = self.resume_point(key)
                if r is None:
                    continue
                while cam.ledger and cam.ledger[0][1] < r:
                    cam.ledger.popleft()
                if cam.ledger:
                    offset = min(offset, min(o for o, _ in cam.ledger))
                # newest epoch first, so an older one still open overwrites it: replay starts there
                entries[key[1]] = resume.ResumeEntry(key[1], r, key[2], replay=bool(cam.ledger))
            offset = max(offset, self._floor.get(tp, 0))
            self._floor[tp] = offset
            meta, evicted = resume.encode(list(entries.values()))
            if evicted:
                log.warning("commit metadata of %s[%d] is full: %d camera(s) left out (first %r); a replay "
                            "from this commit may republish their open segments", tp[0], tp[1], len(evicted),
                            evicted[0])
            result[tp] = (offset, meta)
        return result

    def restore(self, tp: TopicPartition, metadata: str | None) -> None:
        """Apply a committed metadata string (resume points) for a newly assigned partition."""
        self._hints[tp] = resume.decode(metadata)

    def drop_partition(self, tp: TopicPartition) -> int:
        """Forget every camera of ``tp`` (open windows, waiting windows, smoother), and only those.
        Returns the number of waiting windows dropped; the new owner rebuilds them from the
        commit point."""
        before = len(self._pending)
        kept: deque[tuple[float, CameraKey, ClipWindow[Any]]] = deque()
        for item in self._pending:
            if item[1][0] == tp:
                self.predictor.release(item[2].frames)
            else:
                kept.append(item)
        self._pending = kept
        for key in [k for k in self._cameras if k[0] == tp]:
            self._cameras.pop(key).windows.clear()
            self._current.pop(key[:2], None)
        self._next_offset.pop(tp, None)
        self._hints.pop(tp, None)
        self._floor.pop(tp, None)
        self.metrics.set_inflight(len(self._pending))
        return before - len(self._pending)

    def assigned(self) -> list[TopicPartition]:
        return sorted(self._next_offset)

    def stats(self) -> dict[str, WindowStats]:
        """Window counters per camera (summed over partitions, if a camera arrived on several)."""
        out: dict[str, WindowStats] = {}
        for (_, cam_id, _), cam in self._cameras.items():
            if cam_id in out:
                total = out[cam_id]
                out[cam_id] = WindowStats(**{f: getattr(total, f) + getattr(cam.windows.stats, f)
                                             for f in total.__dataclass_fields__})
            else:
                out[cam_id] = cam.windows.stats
        return out

    def _consumed(self, ref: SourceRef) -> None:
        nxt = self._next_offset.get(ref.tp, -1)
        if ref.offset + 1 > nxt:
            self._next_offset[ref.tp] = ref.offset + 1

    def _camera(self, batch: FrameBatch, tp: TopicPartition) -> _Camera:
        """The camera state ``batch`` belongs to: the camera's current epoch, a new one (see the
        module docstring), or the first, resumed from the committed hint if there is one."""
        current = self._current.get((tp, batch.camera_id))
        if current is None:
            hint = self._hints.get(tp, {}).get(batch.camera_id)
            return self._new_camera(tp, batch, hint.epoch if hint else 0, hint.seq if hint else None)
        cam = self._cameras[current]
        reason = self._epoch_reason(cam, batch)
        if reason is None:
            return cam
        # numbered by its first capture time; epochs of a camera only grow (a forged batch that
        # repeats an earlier epoch's start time must not land on that epoch's state)
        epoch = max(batch.capture_ts_ns[0], current[2] + 1)
        log.info("camera %r on %s[%d]: new stream epoch %d (%s)", batch.camera_id, tp[0], tp[1], epoch, reason)
        self.metrics.add_epoch(reason)
        cam.ended = True
        cam.windows.clear()   # its open window will not complete
        if not cam.pending_starts:
            self._ended += self._finish_epoch(current)
        return self._new_camera(tp, batch, epoch, None)

    def _epoch_reason(self, cam: _Camera, batch: FrameBatch) -> str | None:
        if abs(batch.source_fps - cam.fps) > 1e-9 * cam.fps:
            return "fps_change"
        newest, next_start = cam.windows.newest, cam.windows.next_start
        if newest is None:
            return None
        if batch.first_seq > newest + self.config.window.max_seq_jump:
            return "seq_jump"
        if next_start is not None and batch.last_seq < next_start and min(batch.capture_ts_ns) > cam.newest_ts:
            return "restart"
        return None

    def _new_camera(self, tp: TopicPartition, batch: FrameBatch, epoch: int, resume_at: int | None) -> _Camera:
        key = (tp, batch.camera_id, epoch)
        windows: CameraWindows[Any] = CameraWindows(batch.camera_id, self.spec.clip, self.config.window,
                                                    retain=self.predictor.retain, release=self.predictor.release)
        windows.set_source_fps(batch.source_fps)
        if resume_at is not None:
            windows.resume_at(resume_at)
        smoother = Smoother(self.class_names, self.config.smoothing, max_gap_ns=int(self.config.window.max_gap_s * 1e9))
        cam = _Camera(windows=windows, smoother=smoother, key=key, fps=batch.source_fps)
        self._cameras[key] = cam
        self._current[(tp, batch.camera_id)] = key
        return cam
