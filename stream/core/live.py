"""What the live page of ``soccerkd view`` shows, as plain state: each camera's newest frame batch
and last events, and the figures of the last minute (frames/s, windows/s, event latency p50/p99,
the models in use). No Kafka, no OpenCV: the reader threads feed it, the page reads
:meth:`LiveBoard.snapshot`, and a test drives it with a fake clock.

Where each figure comes from (the page says so too):

- frames/s: frames of the batches read from the frames topic in the last minute, by arrival
  time at the viewer, over the minute (or over the time since the viewer started, if shorter);
- windows/s: the rate of serve's ``soccerkd_windows_total`` counter over the last minute, from
  scrapes of its ``/metrics`` (summed over every URL given; a restart's counter reset counts from 0).
  The topics alone cannot give it: an event covers ``num_windows`` windows of one segment, and
  windows that end no segment publish nothing;
- latency: ``emitted_at`` minus the capture time of the newest frame of every event emitted in
  the last minute (the event's own clocks, as ``soccerkd_event_latency_seconds`` measures it),
  nearest-rank p50 and p99.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from stream.core.wire import ActionEvent

WINDOW_S = 60.0


def nearest_rank(values: list[float], q: float) -> float | None:
    """The ``q`` quantile of ``values`` by nearest rank (None when empty).

    >>> nearest_rank([0.4, 0.1, 0.3, 0.2], 0.5), nearest_rank([0.4, 0.1, 0.3, 0.2], 0.99)
    (0.2, 0.4)
    """
    if not 0 <= q <= 1:
        raise ValueError(f"quantile must be in [0, 1], got {q!r}")
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass(frozen=True)
class Frame:
    jpeg: bytes
    seq: int
    capture_ts_ns: int
    version: int


@dataclass
class CameraView:
    """One camera: its newest frame (the JPEG bytes, not decoded) and its last events, newest first."""

    camera_id: str
    jpeg: bytes = b""
    seq: int = -1
    capture_ts_ns: int = 0
    width: int = 0
    height: int = 0
    version: int = 0          # bumps with every new frame or label: the page refetches the image then
    events: deque = field(default_factory=deque)
    frames: deque = field(default_factory=deque)   # (arrival time, frame count) of the last minute


class CounterRate:
    """The rate of a Prometheus counter (summed over several endpoints) over the last ``window_s``.

    A value below the previous one of its endpoint is a restart: the new value counts from 0.

    >>> r = CounterRate(window_s=60)
    >>> r.add(0.0, {"a": 10.0}); r.add(10.0, {"a": 60.0}); r.add(20.0, {"a": 30.0})
    >>> r.rate()
    4.0
    """

    def __init__(self, *, window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self._last: dict[str, float] = {}
        self._total = 0.0
        self._samples: deque[tuple[float, float]] = deque()

    def add(self, at: float, values: dict[str, float]) -> None:
        """Counter ``values`` read at ``at``, by endpoint; an empty scrape (every endpoint failed) adds nothing."""
        if not values:
            return
        for source, value in values.items():
            before = self._last.get(source)
            if before is not None:
                self._total += value - before if value >= before else value
            self._last[source] = value
        self._samples.append((at, self._total))
        while self._samples and self._samples[0][0] < at - self.window_s:
            self._samples.popleft()

    def rate(self) -> float | None:
        if len(self._samples) < 2 or self._samples[-1][0] <= self._samples[0][0]:
            return None
        (t0, v0), (t1, v1) = self._samples[0], self._samples[-1]
        return (v1 - v0) / (t1 - t0)


class LiveBoard:
    """Thread-safe state of the live page. ``clock`` is wall time (seconds since the epoch): event
    times are compared with it."""

    def __init__(self, *, last_events: int = 8, window_s: float = WINDOW_S, metrics_urls: tuple[str, ...] = (),
                 clock: Callable[[], float] = time.time) -> None:
        if last_events < 1:
            raise ValueError(f"last_events must be >= 1, got {last_events!r}")
        self.last_events, self.window_s, self.metrics_urls = last_events, window_s, metrics_urls
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._cameras: dict[str, CameraView] = {}
        self._recent: deque[ActionEvent] = deque()   # every event of the last minute, for latency and models
        self.windows = CounterRate(window_s=window_s)
        self.scrape_error: str | None = None
        self.unreadable = 0

    def frame(self, camera_id: str) -> "Frame | None":
        """The camera's newest frame, or None before its first (an unknown camera creates nothing)."""
        with self._lock:
            cam = self._cameras.get(camera_id)
            if cam is None or not cam.jpeg:
                return None
            return Frame(cam.jpeg, cam.seq, cam.capture_ts_ns, cam.version)

    def _camera(self, camera_id: str) -> CameraView:
        cam = self._cameras.get(camera_id)
        if cam is None:
            cam = self._cameras[camera_id] = CameraView(camera_id)
        return cam

    def add_frames(self, camera_id: str, *, count: int, jpeg: bytes, seq: int, capture_ts_ns: int, width: int,
                   height: int) -> None:
        """A batch of ``count`` frames arrived; ``jpeg`` is its newest frame, ``seq`` its number."""
        now = self._clock()
        with self._lock:
            cam = self._camera(camera_id)
            cam.frames.append((now, count))
            self._expire(cam.frames, now)
            if seq > cam.seq or capture_ts_ns > cam.capture_ts_ns:   # a replayed older batch does not go back
                cam.jpeg, cam.seq, cam.capture_ts_ns, cam.width, cam.height = jpeg, seq, capture_ts_ns, width, height
                cam.version += 1

    def add_event(self, event: ActionEvent) -> None:
        now = self._clock()
        with self._lock:
            cam = self._camera(event.camera_id)
            cam.events.appendleft(event)
            while len(cam.events) > self.last_events:
                cam.events.pop()
            cam.version += 1
            self._recent.append(event)
            while self._recent and self._recent[0].emitted_at < now - self.window_s:
                self._recent.popleft()

    def add_unreadable(self) -> None:
        with self._lock:
            self.unreadable += 1

    def add_scrape(self, values: dict[str, float], error: str | None = None) -> None:
        with self._lock:
            self.windows.add(self._clock(), values)
            self.scrape_error = error

    def _expire(self, frames: deque, now: float) -> None:
        while frames and frames[0][0] < now - self.window_s:
            frames.popleft()

    def label(self, camera_id: str) -> tuple[str, float]:
        """The camera's current label and confidence: its newest event's, or ("no event yet", 0)."""
        with self._lock:
            cam = self._cameras.get(camera_id)
            ev = cam.events[0] if cam is not None and cam.events else None
        return (ev.label, ev.confidence) if ev is not None else ("no event yet", 0.0)

    def snapshot(self) -> dict[str, Any]:
        """Everything the page shows, as JSON-ready values."""
        now = self._clock()
        span = max(1e-9, min(self.window_s, now - self._started))
        with self._lock:
            cameras, total = [], 0
            for cam in sorted(self._cameras.values(), key=lambda c: c.camera_id):
                self._expire(cam.frames, now)
                n = sum(c for _, c in cam.frames)
                total += n
                cameras.append({"camera_id": cam.camera_id, "version": cam.version, "seq": cam.seq,
                                "captured_at": cam.capture_ts_ns / 1e9 if cam.capture_ts_ns else None,
                                "size": [cam.width, cam.height], "frames_per_s": n / span,
                                "events": [_event_row(e) for e in cam.events]})
            recent = [e for e in self._recent if e.emitted_at >= now - self.window_s]
            windows, scrape_error = self.windows.rate(), self.scrape_error
        latencies = [e.emitted_at - e.end_capture_ts_ns / 1e9 for e in recent]
        models: dict[tuple[str, str], int] = {}
        for e in recent:
            models[(e.model_name, e.checkpoint_sha256)] = models.get((e.model_name, e.checkpoint_sha256), 0) + 1
        newest = max(recent, key=lambda e: e.emitted_at, default=None)
        return {
            "now": now, "window_s": self.window_s, "cameras": cameras, "unreadable_records": self.unreadable,
            "frames_per_s": total / span, "events_last_window": len(recent),
            "windows_per_s": windows, "windows_source": self._windows_source(scrape_error),
            "latency_p50_s": nearest_rank(latencies, 0.5), "latency_p99_s": nearest_rank(latencies, 0.99),
            "models": [{"model_name": m, "checkpoint_sha256": sha, "events": n,
                        "current": newest is not None and (m, sha) == (newest.model_name, newest.checkpoint_sha256)}
                       for (m, sha), n in sorted(models.items(), key=lambda kv: -kv[1])],
        }

    def _windows_source(self, error: str | None) -> str:
        if not self.metrics_urls:
            return "not measured: start soccerkd view with --metrics-url http://SERVE:PORT/metrics"
        where = ", ".join(self.metrics_urls)
        return f"rate of soccerkd_windows_total at {where}" + (f" (last scrape failed: {error})" if error else "")


def _event_row(e: ActionEvent) -> dict[str, Any]:
    return {"event_id": e.event_id, "label": e.label, "confidence": e.confidence, "start_seq": e.start_seq,
            "end_seq": e.end_seq, "emitted_at": e.emitted_at,
            "latency_s": e.emitted_at - e.end_capture_ts_ns / 1e9, "model_name": e.model_name,
            "checkpoint_sha256": e.checkpoint_sha256}
