"""``soccerkd view``: a live web page of what a deployment sees, read from its topics.

Two reader threads (no consumer group, nothing committed) follow the frames topic (the newest
batch of each camera, kept encoded) and the events topic (``read_committed``); a third scrapes
serve's ``/metrics`` for windows/s. The page is served by :class:`stream.app.http.MetricsServer`
(the slow-client-proof endpoint of the metrics and probes) and polls ``/api/state`` once a
second; a camera's picture is fetched again only when its version changed. A picture is decoded
and annotated on request, from the newest JPEG of its camera only, at most ``max_fps`` times a
second per camera whoever asks, so the viewer costs a few decodes a second however fast the
cameras run. Periodic JPEG rather than MJPEG: an MJPEG stream holds a connection and a handler
for as long as the page is open, which the endpoint's total answer deadline and bounded handler
slots exist to prevent; short requests also need no stream-parsing in the browser.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, generate_latest

from stream.core.limits import LimitsConfig, parse_message
from stream.core.live import LiveBoard
from stream.core.wire import ActionEvent, EnvelopeError, FrameBatch, jpeg_header_error

log = logging.getLogger(__name__)
ASSET_DIR = Path(__file__).resolve().parents[1] / "assets" / "view"
ASSETS = {"/": ("index.html", "text/html; charset=utf-8"), "/view.js": ("view.js", "text/javascript; charset=utf-8"),
          "/view.css": ("view.css", "text/css; charset=utf-8")}
WINDOWS_METRIC = "soccerkd_windows_total"


class ViewMetrics:
    """The viewer's own ``/metrics``: records read per topic, unreadable ones, pictures rendered."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry if registry is not None else CollectorRegistry()
        self.records = Counter("soccerkd_view_records", "Records read, by topic kind", ["kind"], registry=r)
        self.unreadable = Counter("soccerkd_view_unreadable_records", "Records that are not a frame batch or "
                                  "an event, by topic kind", ["kind"], registry=r)
        self.renders = Counter("soccerkd_view_frames_rendered", "Frames decoded and annotated for the page",
                               registry=r)
        for kind in ("frames", "events"):
            self.records.labels(kind=kind)
            self.unreadable.labels(kind=kind)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def windows_total(text: str) -> float:
    """The sum of ``soccerkd_windows_total`` in a Prometheus text exposition (ValueError if absent)."""
    from stream.app.metrics import parse_metrics

    found = [value for (name, _), value in parse_metrics(text).items() if name == WINDOWS_METRIC]
    if not found:
        raise ValueError(f"no {WINDOWS_METRIC} in the exposition: is this a soccerkd serve /metrics?")
    return float(sum(found))


def checked_batch(value: bytes | None, key: bytes | None, limits: LimitsConfig = LimitsConfig()) -> FrameBatch:
    """The frame batch of a frames record, checked as serve checks it before decoding anything
    (envelope, key, ``limits``), and its newest frame's JPEG header against the envelope's size:
    the only frame the page decodes. Raises the :class:`EnvelopeError` that rejects it."""
    # the viewer forms no windows: the windows-per-message limit is not its to apply
    batch = parse_message(value, key, limits, window_stride=limits.max_frames_per_message)
    error = jpeg_header_error(batch.frames[-1], batch.width, batch.height)
    if error is not None:
        raise error
    return batch


def annotate(jpeg: bytes, *, camera_id: str, label: str, confidence: float, seq: int, captured_at: float,
             min_width: int = 480, quality: int = 80) -> bytes | None:
    """The frame with its label and confidence drawn on it, as JPEG; None if it does not decode.
    Small frames are scaled up to ``min_width`` first so the text stays readable."""
    import cv2
    import numpy as np

    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        return None
    h, w = img.shape[:2]
    if w < min_width:
        img = cv2.resize(img, (min_width, max(1, round(h * min_width / w))), interpolation=cv2.INTER_NEAREST)
        h, w = img.shape[:2]
    scale = max(0.5, w / 640)
    bar = int(34 * scale)
    cv2.rectangle(img, (0, 0), (w, bar), (0, 0, 0), -1)
    text = f"{label} {confidence:.2f}" if confidence > 0 else label
    cv2.putText(img, text, (int(8 * scale), int(25 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale,
                (80, 255, 80) if confidence > 0 else (200, 200, 200), max(1, int(2 * scale)), cv2.LINE_AA)
    stamp = time.strftime("%H:%M:%S", time.localtime(captured_at)) if captured_at else "?"
    cv2.rectangle(img, (0, h - bar), (w, h), (0, 0, 0), -1)
    cv2.putText(img, f"{camera_id}  frame {seq}  captured {stamp}", (int(8 * scale), h - int(11 * scale)),
                cv2.FONT_HERSHEY_SIMPLEX, 0.55 * scale, (255, 255, 255), max(1, int(1.5 * scale)), cv2.LINE_AA)
    ok, out = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return out.tobytes() if ok else None


class FrameRenderer:
    """Annotated pictures per camera, cached: a camera is decoded again only when it has a new frame
    or label and its last render is at least ``1 / max_fps`` s old."""

    def __init__(self, board: LiveBoard, metrics: ViewMetrics, *, max_fps: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not max_fps > 0:
            raise ValueError(f"max_fps must be > 0, got {max_fps!r}")
        self.board, self.metrics, self.min_gap_s, self._clock = board, metrics, 1.0 / max_fps, clock
        self._cache: dict[str, tuple[int, float, bytes]] = {}   # camera -> (version, rendered at, jpeg)
        self._lock = threading.Lock()

    def jpeg(self, camera_id: str) -> bytes | None:
        with self._lock:
            cached = self._cache.get(camera_id)
            now = self._clock()
            if cached is not None and now - cached[1] < self.min_gap_s:
                return cached[2]
            frame = self.board.frame(camera_id)
            if frame is None:
                return None
            if cached is not None and cached[0] == frame.version:
                return cached[2]
            label, confidence = self.board.label(camera_id)
            out = annotate(frame.jpeg, camera_id=camera_id, label=label, confidence=confidence, seq=frame.seq,
                           captured_at=frame.capture_ts_ns / 1e9)
            self.metrics.renders.inc()
            if out is None:
                return cached[2] if cached else None
            self._cache[camera_id] = (frame.version, now, out)
            return out


def _follow(name: str, records: Callable[[], Iterator[Any]], handle: Callable[[Any], None],
            stop: threading.Event) -> None:
    """Feed ``records()`` to ``handle`` until ``stop``; a failed reader says so once and starts again."""
    while not stop.is_set():
        try:
            for rec in records():
                handle(rec)
        except Exception as exc:   # the broker went away, a topic was deleted: retry, never die silently
            log.warning("view: reading the %s topic failed (%s: %s); again in 2 s", name, type(exc).__name__, exc)
            stop.wait(2.0)


class LiveView:
    """The whole viewer: readers, scraper, renderer and the HTTP endpoint. ``start`` returns self."""

    def __init__(self, *, bootstrap: str, frames_topic: str = "frames", events_topic: str = "events",
                 port: int = 8090, host: str = "127.0.0.1", security: dict[str, Any] | None = None,
                 metrics_urls: tuple[str, ...] = (), max_fps: float = 4.0, last_events: int = 8,
                 scrape_every_s: float = 2.0) -> None:
        from stream.app.http import MetricsServer

        self.bootstrap, self.frames_topic, self.events_topic = bootstrap, frames_topic, events_topic
        self.security, self.scrape_every_s = security or {}, scrape_every_s
        self.metrics = ViewMetrics()
        self.board = LiveBoard(last_events=last_events, metrics_urls=tuple(metrics_urls))
        self.renderer = FrameRenderer(self.board, self.metrics, max_fps=max_fps)
        self.max_fps, self._started = max_fps, time.time()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=_follow, args=("frames", self._frame_records, self._on_frames, self._stop),
                             name="view-frames", daemon=True),
            threading.Thread(target=_follow, args=("events", self._event_records, self._on_event, self._stop),
                             name="view-events", daemon=True)]
        if metrics_urls:
            self._threads.append(threading.Thread(target=self._scrape_loop, name="view-scrape", daemon=True))
        routes = {path: self._asset for path in ASSETS}
        routes.update({"/api/state": self._state, "/frame/*": self._frame})
        self.server = MetricsServer(self.metrics, port=port, host=host, routes=routes, ready=self._ready,
                                    alive=self._ready, what="the live page", flags="--port / --bind")

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> "LiveView":
        for t in self._threads:
            t.start()
        self.server.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.server.stop()
        for t in self._threads:
            t.join(5)

    def _ready(self) -> tuple[bool, str]:
        dead = [t.name for t in self._threads if not t.is_alive()]
        return (False, f"stopped: {', '.join(dead)}") if dead else (True, "reading the topics")

    # -- the topics --------------------------------------------------------------------------
    def _frame_records(self) -> Iterator[Any]:
        from stream.kafka.events import iter_records

        # one batch back per partition: a deployment that stands still still shows its pictures
        return iter_records(self.bootstrap, self.frames_topic, from_beginning=False, backlog=1, max_poll_records=50,
                            should_stop=self._stop.is_set, security=self.security)

    def _event_records(self) -> Iterator[Any]:
        from stream.kafka.events import iter_records

        return iter_records(self.bootstrap, self.events_topic, from_beginning=False, backlog=4 * self.board.last_events,
                            isolation="read_committed", should_stop=self._stop.is_set, security=self.security)

    def _on_frames(self, rec: Any) -> None:
        self.metrics.records.labels(kind="frames").inc()
        try:
            batch = checked_batch(rec.value, rec.key)
        except (EnvelopeError, TypeError):
            self.metrics.unreadable.labels(kind="frames").inc()
            self.board.add_unreadable()
            return
        # the backlog batch is shown but not counted: it arrived before the minute being measured
        fresh = rec.timestamp is None or rec.timestamp / 1000 >= self._started
        self.board.add_frames(batch.camera_id, count=len(batch.frames) if fresh else 0, jpeg=batch.frames[-1],
                              seq=batch.last_seq, capture_ts_ns=batch.capture_ts_ns[-1], width=batch.width,
                              height=batch.height)

    def _on_event(self, rec: Any) -> None:
        self.metrics.records.labels(kind="events").inc()
        try:
            event = ActionEvent.from_json(rec.value)
        except (ValueError, TypeError):
            self.metrics.unreadable.labels(kind="events").inc()
            self.board.add_unreadable()
            return
        self.board.add_event(event)

    def _scrape_loop(self) -> None:
        while not self._stop.is_set():
            values, errors = {}, []
            for url in self.board.metrics_urls:
                try:
                    with urllib.request.urlopen(url, timeout=2.0) as resp:
                        values[url] = windows_total(resp.read().decode("utf-8", "replace"))
                except Exception as exc:   # serve restarting, a wrong URL: shown on the page
                    errors.append(f"{url}: {type(exc).__name__}: {exc}")
            self.board.add_scrape(values, "; ".join(errors) or None)
            self._stop.wait(self.scrape_every_s)

    # -- the routes --------------------------------------------------------------------------
    def _asset(self, target: str) -> tuple[int, bytes, str]:
        name, ctype = ASSETS[target.split("?", 1)[0]]
        return 200, (ASSET_DIR / name).read_bytes(), ctype

    def _state(self, target: str) -> tuple[int, bytes, str]:
        state = self.board.snapshot()
        state.update(frames_topic=self.frames_topic, events_topic=self.events_topic, max_fps=self.max_fps)
        return 200, json.dumps(state).encode(), "application/json"

    def _frame(self, target: str) -> tuple[int, bytes, str]:
        name = target.split("?", 1)[0][len("/frame/"):]
        camera = urllib.parse.unquote(name[:-4]) if name.endswith(".jpg") else ""
        jpeg = self.renderer.jpeg(camera) if camera else None
        if jpeg is None:
            return 404, f"no frame of camera {camera[:128]!r} yet\n".encode(), "text/plain; charset=utf-8"
        return 200, jpeg, "image/jpeg"
