"""Camera ingester: any OpenCV source -> JPEG frame batches on the frames topic (key = camera id).

Sources: a video file, a frame folder, an RTSP/RTMP/HTTP/UDP URL, or a webcam index (``"0"``).
Capture timestamps come from the source clock for files and folders (start wall time + media
position, so "real-time" replay gives meaningful latencies) and from the wall clock, taken at
capture, for live sources. Pacing ``realtime`` sends file frames at their media time; ``fast``
sends as fast as possible.

**Live sources stay attached.** A failed open or read of a live source is retried with capped
exponential backoff (``reconnect_backoff_s`` doubling up to ``reconnect_backoff_max_s``), for ever
unless ``max_reconnects`` says otherwise. A live camera cannot wait for a slow producer: its
frames go through a bounded buffer (``live_buffer_frames``) that drops the oldest, counted.

**Frame numbering**, the one rule: a camera's frames are numbered from ``start_seq``, one up per
frame sent; after a reconnect the numbering starts again at 0. The service sees a batch that
starts before its open window but was captured later, and starts a new stream epoch
(:mod:`stream.core.pipeline`), so no window or event spans the outage.

**Camera credentials** stay out of logs, errors and the process arguments: every message shows a
URL as ``rtsp://***@host/...``, and the password can come from an environment variable
(``password_env``) or a file (``password_file``, first line) instead of the URL; it is put into
the URL (``rtsp://user@host/...``) only in memory, when the source is opened.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

from soccerkd.errors import DataError

from stream.core.wire import FrameBatch, encode_frame_batch
from stream.errors import StreamError, is_env_name, not_env_name, redact_url
from stream.inference.images import encode_image
from stream.kafka.publisher import Sends

log = logging.getLogger("soccerkd.ingest")
USERINFO_SAFE = "!$&'()*+,;=:"   # what a URL's password may hold as is (RFC 3986); the rest is %-encoded
CREDENTIAL_KEYS = ("password_env", "password_file")
RECONNECTED = "reconnected"   # yielded by a live source's frames between an outage and its next frame


@dataclass(frozen=True)
class IngestOptions:
    source: str
    camera_id: str
    bootstrap: str = "127.0.0.1:9092"
    topic: str = "frames"
    frames_per_batch: int = 8
    jpeg_quality: int = 85
    max_side: int = 640
    pacing: Literal["realtime", "fast"] = "realtime"
    loop: bool = False
    start_seq: int = 0
    max_frames: int | None = None
    folder_fps: float = 25.0
    max_reconnects: int | None = None      # live sources: None = for ever
    reconnect_backoff_s: float = 0.5       # first wait after a failure; doubles up to the max
    reconnect_backoff_max_s: float = 30.0
    live_buffer_frames: int = 64           # live sources: frames held for a slow producer
    encode_threads: int = 2                # downscale + JPEG encode threads per camera
    read_timeout_s: float = 5.0            # URL sources: longest wait to open, or for a frame, before reconnecting
    outage_gap_s: float = 2.0              # live sources: a longer wait between frames counts as an outage
    password_env: str | None = None        # URL sources: environment variable holding the password...
    password_file: Path | None = None      # ...or a file whose first line is it (never the URL itself)

    def __post_init__(self) -> None:
        if self.frames_per_batch < 1:
            raise StreamError(f"frames_per_batch must be >= 1, got {self.frames_per_batch!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise StreamError(f"jpeg_quality must be 1..100, got {self.jpeg_quality!r}")
        if self.max_side < 16:
            raise StreamError(f"max_side must be >= 16, got {self.max_side!r}")
        if self.pacing not in ("realtime", "fast"):
            raise StreamError(f"pacing must be 'realtime' or 'fast', got {self.pacing!r}")
        if self.max_reconnects is not None and self.max_reconnects < 0:
            raise StreamError(f"max_reconnects must be >= 0 (or unset: for ever), got {self.max_reconnects!r}")
        if not 0 < self.reconnect_backoff_s <= self.reconnect_backoff_max_s:
            raise StreamError(f"reconnect_backoff_s must be > 0 and <= reconnect_backoff_max_s "
                              f"({self.reconnect_backoff_max_s!r}), got {self.reconnect_backoff_s!r}")
        if not (self.read_timeout_s > 0 and self.outage_gap_s > 0):
            raise StreamError(f"read_timeout_s and outage_gap_s must be > 0, got {self.read_timeout_s!r} and "
                              f"{self.outage_gap_s!r}")
        if self.encode_threads < 1:
            raise StreamError(f"encode_threads must be >= 1, got {self.encode_threads!r}")
        if self.live_buffer_frames < 1:
            raise StreamError(f"live_buffer_frames must be >= 1, got {self.live_buffer_frames!r}")
        self._check_password_source()

    def _check_password_source(self) -> None:
        if self.password_env is None and self.password_file is None:
            return
        if self.password_env is not None and self.password_file is not None:
            raise StreamError("give password_env or password_file, not both")
        if self.password_env is not None and not is_env_name(self.password_env):
            raise StreamError(not_env_name("password_env", self.password_env))
        from urllib.parse import urlsplit

        parts = urlsplit(self.source) if "://" in self.source else None
        if parts is None or not parts.username:
            raise StreamError(f"password_env and password_file need a URL source with a user name "
                              f"(rtsp://USER@host/...), got {redact_url(self.source)!r}")
        if parts.password is not None:
            raise StreamError(f"the source URL {redact_url(self.source)!r} holds a password already, and "
                              f"password_env or password_file another: drop the one in the URL")


@dataclass
class IngestStats:
    frames: int = 0
    batches: int = 0
    bytes: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    dropped: int = 0      # live frames the bounded buffer dropped (the producer fell behind)
    reconnects: int = 0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class OpenedSource:
    # (RGB uint8 frame, media time in ns), or for live sources (frame, None, capture time in ns,
    # fps), or RECONNECTED after a live outage
    frames: Iterator[Any]
    fps: float
    live: bool


def source_url(options: IngestOptions) -> str:
    """The source to open: ``options.source`` with the password from ``password_env`` or
    ``password_file`` put into its URL (characters a URL cannot hold there are %-encoded). Only
    this string holds the password; never log it, log ``options.source``."""
    import os
    from urllib.parse import quote

    if options.password_env is not None:
        password = os.environ.get(options.password_env)
        if not password:
            raise StreamError(f"camera {options.camera_id}: password_env names ${options.password_env}, "
                              f"which is not set or empty")
    elif options.password_file is not None:
        try:
            password = Path(options.password_file).read_text().splitlines()[0]
        except (OSError, IndexError) as exc:
            raise StreamError(f"camera {options.camera_id}: password_file {str(options.password_file)!r} cannot "
                              f"be read or is empty") from exc
    else:
        return options.source
    scheme, rest = options.source.split("://", 1)
    authority, slash, path = rest.partition("/")
    user, _, host = authority.rpartition("@")
    return f"{scheme}://{user}:{quote(password, safe=USERINFO_SAFE)}@{host}{slash}{path}"


def is_live(source: str) -> bool:
    return source.isdigit() or source.lower().startswith(("rtsp://", "rtmp://", "http://", "https://", "udp://"))


def open_source(source: str, *, folder_fps: float = 25.0, loop: bool = False,
                options: IngestOptions | None = None, stop: threading.Event | None = None,
                on_reconnect: Callable[[], None] = lambda: None,
                on_drop: Callable[[int], None] = lambda n: None) -> OpenedSource:
    """Open ``source`` for sequential reading; file sources loop when ``loop`` is set; live
    sources reconnect as ``options`` say (see the module docstring)."""
    import cv2

    shown = redact_url(source)   # what messages say; ``source`` may hold a password
    path = Path(source)
    if path.is_dir():
        from soccerkd.data.decode import list_frame_files

        files = list_frame_files(path)
        if not files:
            raise DataError(f"frame folder {shown!r} holds no images")

        def folder() -> Iterator[tuple[Any, int | None]]:
            k = 0
            while True:
                for f in files:
                    img = cv2.imread(str(f), cv2.IMREAD_COLOR)
                    if img is None:
                        raise DataError(f"cannot decode image {str(f)!r}")
                    yield cv2.cvtColor(img, cv2.COLOR_BGR2RGB), int(k * 1e9 / folder_fps)
                    k += 1
                if not loop:
                    return

        return OpenedSource(folder(), folder_fps, False)
    live = is_live(source)
    if not live and not path.is_file():
        what = "does not exist" if not path.exists() else "is not a video file, frame folder, URL or webcam index"
        raise DataError(f"source {shown!r} {what}")
    target: Any = int(source) if source.isdigit() else source
    if live:
        return _open_live(shown, target, options or IngestOptions(source=source, camera_id="camera"),
                          stop or threading.Event(), on_reconnect, on_drop)
    cap = cv2.VideoCapture(target)
    if not cap.isOpened():
        raise DataError(f"OpenCV cannot open source {shown!r}")
    fps = _fps(cap)

    def video() -> Iterator[tuple[Any, int | None]]:
        k = 0
        try:
            while True:
                ok, img = cap.read()
                if not ok:
                    if not loop or k == 0:
                        return
                    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    continue
                yield cv2.cvtColor(img, cv2.COLOR_BGR2RGB), int(k * 1e9 / fps)
                k += 1
        finally:
            cap.release()

    return OpenedSource(video(), fps, False)


def _fps(cap: Any) -> float:
    import cv2

    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    return fps if 0 < fps < 1000 else 25.0


def _open_live(shown: str, target: Any, options: IngestOptions, stop: threading.Event,
               on_reconnect: Callable[[], None], on_drop: Callable[[int], None]) -> OpenedSource:
    """A live source read by a capture thread into a bounded buffer (see :class:`LiveBuffer`),
    reconnecting after any failed open or read. ``shown`` names it in messages (no password), ``target``
    is what OpenCV opens."""
    import cv2

    def open_capture() -> Any:
        if isinstance(target, str):   # a URL: bounded waits, so a silent source is an outage, not a hang
            timeout_ms = int(options.read_timeout_s * 1000)
            return cv2.VideoCapture(target, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms,
                                                             cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms])
        return cv2.VideoCapture(target)

    def captures() -> Iterator[Any]:
        failures = reconnects = 0
        delivered_before = False
        last_frame = 0.0
        while not stop.is_set():
            cap = open_capture()
            got = 0
            try:
                while cap.isOpened() and not stop.is_set():
                    ok, img = cap.read()
                    if not ok:
                        break
                    now = time.monotonic()
                    if got == 0:
                        failures = reconnects = 0   # --max-reconnects counts failures in a row
                        if delivered_before:
                            yield RECONNECTED
                    elif now - last_frame > options.outage_gap_s:   # a source that stalls (UDP) without failing
                        log.warning("camera %s: no frame from %s for %.1f s; the frames after it start a new "
                                    "stream epoch", options.camera_id, shown, now - last_frame)
                        yield RECONNECTED
                    last_frame = now
                    if got == 0:
                        fps = _fps(cap)
                    got += 1
                    delivered_before = True
                    yield cv2.cvtColor(img, cv2.COLOR_BGR2RGB), None, time.time_ns(), fps
            finally:
                cap.release()
            if stop.is_set():
                return
            if options.max_reconnects is not None and reconnects >= options.max_reconnects:
                raise StreamError(f"live source {shown!r} failed and {reconnects} reconnect(s) did not bring it "
                                  f"back (--max-reconnects {options.max_reconnects})")
            delay = min(options.reconnect_backoff_max_s, options.reconnect_backoff_s * 2 ** failures)
            failures += 1
            reconnects += 1
            log.warning("camera %s: live source %s %s; reconnecting in %.1f s (attempt %d)", options.camera_id,
                        shown, "ended or failed" if got else "cannot be opened or read", delay, reconnects)
            on_reconnect()
            stop.wait(delay)

    # the frame rate travels with each frame: it is known once connected, and may change on reconnect
    return OpenedSource(LiveBuffer(captures(), options.live_buffer_frames, on_drop).frames(), 0.0, True)


class LiveBuffer:
    """A capture thread that keeps at most ``size`` frames for the consumer and drops the
    oldest when it falls behind (a live camera does not wait); ``dropped`` counts them. An error
    of the source is raised in the consumer."""

    def __init__(self, items: Iterator[Any], size: int, on_drop: Callable[[int], None] = lambda n: None) -> None:
        self._items, self._size = items, size
        self._queue: collections.deque[Any] = collections.deque()
        self._cond = threading.Condition()
        self._done = False
        self._error: BaseException | None = None
        self.dropped = 0
        self.on_drop = on_drop
        self._thread = threading.Thread(target=self._capture, name="capture", daemon=True)

    def _capture(self) -> None:
        try:
            for item in self._items:
                with self._cond:
                    if item is not RECONNECTED and len(self._queue) >= self._size:
                        self._drop_oldest_frame()
                    self._queue.append(item)
                    self._cond.notify()
        except BaseException as exc:
            self._error = exc
        finally:
            with self._cond:
                self._done = True
                self._cond.notify()

    def _drop_oldest_frame(self) -> None:
        for i, queued in enumerate(self._queue):   # never drop an outage marker
            if queued is not RECONNECTED:
                del self._queue[i]
                self.dropped += 1
                self.on_drop(1)
                return

    def frames(self) -> Iterator[Any]:
        self._thread.start()
        while True:
            with self._cond:
                while not self._queue and not self._done:
                    self._cond.wait(0.5)
                if self._queue:
                    item = self._queue.popleft()
                elif self._error is not None:
                    raise self._error
                else:
                    return
            yield item


def _shrunk_size(w: int, h: int, max_side: int) -> tuple[int, int]:
    """(width, height) after scaling so that the longer side is at most ``max_side``."""
    if max(h, w) <= max_side:
        return w, h
    scale = max_side / max(h, w)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _shrink(rgb: Any, max_side: int) -> Any:
    import cv2

    h, w = rgb.shape[:2]
    size = _shrunk_size(w, h, max_side)
    return rgb if size == (w, h) else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def frame_batches(opened: OpenedSource, options: IngestOptions, *, anchor_ns: int | None = None,
                  sleep: Callable[[float], None] = time.sleep, now_ns: Callable[[], int] = time.time_ns,
                  observe: Callable[[str, float], None] | None = None,
                  stop: Callable[[], bool] = lambda: False) -> Iterator[FrameBatch]:
    """Downscale, encode, timestamp, pace and group frames into batches (the last one may be
    shorter); ``observe("encode", seconds)`` is called per frame when given. Once ``stop()``
    holds no frame is read any more, and the frames already read still come out (a short batch):
    a camera stopped or removed publishes what it holds.

    Downscaling and JPEG encoding run in ``options.encode_threads`` threads (OpenCV releases the
    GIL) while this thread reads the next frames; batches still come out in frame order, up to
    two of them encoding at once."""
    from concurrent.futures import Future, ThreadPoolExecutor

    anchor = now_ns() if anchor_ns is None else anchor_ns
    pending: collections.deque[tuple[dict[str, Any], list[Future]]] = collections.deque()
    buf: list[Future] = []
    stamps: list[int] = []
    seq = options.start_seq
    size: tuple[int, int] | None = None
    fps = opened.fps
    n = 0

    def encode(rgb: Any) -> bytes:
        t0 = time.perf_counter()
        out = encode_image(_shrink(rgb, options.max_side), quality=options.jpeg_quality)
        if observe is not None:
            observe("encode", time.perf_counter() - t0)
        return out

    def close_batch() -> None:
        assert size is not None
        pending.append((dict(camera_id=options.camera_id, first_seq=seq - len(buf), capture_ts_ns=tuple(stamps),
                             width=size[0], height=size[1], source_fps=fps), list(buf)))
        buf.clear()
        stamps.clear()

    def ready(block: bool) -> Iterator[FrameBatch]:
        while pending and (block or all(f.done() for f in pending[0][1])):
            meta, futures = pending.popleft()
            yield FrameBatch(frames=tuple(f.result() for f in futures), **meta)

    with ThreadPoolExecutor(max_workers=options.encode_threads, thread_name_prefix="encode") as pool:
        for item in opened.frames:
            if options.max_frames is not None and n >= options.max_frames:
                break
            if item is RECONNECTED:   # the numbering rule (module docstring): start again at 0
                if buf:
                    close_batch()
                seq = 0
                continue
            rgb, media_ns, *captured = item
            shape = _shrunk_size(rgb.shape[1], rgb.shape[0], options.max_side)
            item_fps = captured[1] if len(captured) > 1 else fps
            if buf and (shape != size or item_fps != fps):   # one size and one fps per batch
                close_batch()
            size, fps = shape, item_fps
            if media_ns is None:
                ts = captured[0] if captured else now_ns()
            else:
                ts = anchor + media_ns
                if options.pacing == "realtime":
                    ahead = (ts - now_ns()) / 1e9
                    if ahead > 0:
                        yield from ready(block=True)   # nothing to do until then: send what is encoded
                        sleep(ahead)
            buf.append(pool.submit(encode, rgb))
            stamps.append(ts)
            seq += 1
            n += 1
            if len(buf) >= options.frames_per_batch:
                close_batch()
            yield from ready(block=len(pending) > 2)
            if stop():   # here, not before a read: a frame read is a frame sent
                break
        if buf:
            close_batch()
        yield from ready(block=True)


def ingest(options: IngestOptions, *, producer: Any = None, progress: bool = True,
           should_stop: Callable[[], bool] = lambda: False, metrics: Any = None,
           stop: threading.Event | None = None) -> IngestStats:
    """Run one camera until the source ends, ``should_stop()``, ``stop`` or Ctrl-C; always flushes."""
    from stream.kafka.config import KafkaConfig
    from stream.kafka.connection import make_producer

    own = producer is None
    if own:
        producer = make_producer(KafkaConfig(bootstrap=options.bootstrap), client_id=f"ingest-{options.camera_id}")
    stop = stop or threading.Event()
    stats = IngestStats()
    try:
        run_camera(options, producer, stats, stop=stop, should_stop=should_stop, metrics=metrics, progress=progress)
    except KeyboardInterrupt:
        stats.interrupted = True
        stop.set()
    finally:
        producer.flush()
        if own:
            producer.close()
    return stats


def run_camera(options: IngestOptions, producer: Any, stats: IngestStats, *, stop: threading.Event,
               should_stop: Callable[[], bool] = lambda: False, metrics: Any = None,
               progress: bool = False) -> None:
    """Capture, encode and send one camera's frames with a shared ``producer`` (thread-safe)
    until its source ends or ``stop`` is set; updates ``stats`` and ``metrics`` as it goes."""
    cam = options.camera_id
    if metrics is not None:
        metrics.add_camera(cam)

    def reconnecting() -> None:
        stats.reconnects += 1
        if metrics is not None:
            metrics.reconnects.labels(camera=cam).inc()
            metrics.up.labels(camera=cam).set(0)

    def dropped(n: int) -> None:   # called on the capture thread
        stats.dropped += n
        if metrics is not None:
            metrics.frames.labels(camera=cam, outcome="dropped").inc(n)

    opened = open_source(source_url(options), folder_fps=options.folder_fps, loop=options.loop, options=options,
                         stop=stop, on_reconnect=reconnecting, on_drop=dropped)
    if metrics is not None:
        opened = OpenedSource(_observed(opened.frames, cam, metrics), opened.fps, opened.live)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(unit="frame", desc=f"ingest {cam}", dynamic_ncols=True)
    t0 = time.perf_counter()
    sends = Sends()
    observe = None if metrics is None else (lambda stage, sec: metrics.stage.labels(stage=stage).observe(sec))
    try:
        # a stop ends the reading, not the sending: the frames read by then are all sent
        for batch in frame_batches(opened, options, observe=observe, stop=lambda: should_stop() or stop.is_set()):
            value = encode_frame_batch(batch)
            t_send = time.perf_counter()
            sends.add(producer.send(options.topic, key=batch.key, value=value))
            if metrics is not None:
                metrics.stage.labels(stage="produce").observe((time.perf_counter() - t_send) / len(batch.frames))
                metrics.frames.labels(camera=cam, outcome="sent").inc(len(batch.frames))
            stats.frames += len(batch.frames)
            stats.batches += 1
            stats.bytes += len(value)
            if bar is not None:
                bar.update(len(batch.frames))
                bar.set_postfix(fps=f"{stats.frames / max(1e-9, time.perf_counter() - t0):.1f}",
                                MB=f"{stats.bytes / 1e6:.1f}", refresh=False)
            if len(sends) > 256:
                sends.forget_acknowledged()
                _raise_failed(sends)
    finally:
        stats.seconds = time.perf_counter() - t0
        if bar is not None:
            bar.close()
        if metrics is not None:
            metrics.up.labels(camera=cam).set(0)
    producer.flush()
    _raise_failed(sends)


def _observed(frames: Iterator[Any], camera: str, metrics: Any) -> Iterator[Any]:
    """Pass frames through, timing the wait for each one (stage ``capture``), marking the camera
    up and measuring its fps every 2 s."""
    window_start, window_frames = time.monotonic(), 0
    it = iter(frames)
    while True:
        t0 = time.perf_counter()
        try:
            item = next(it)
        except StopIteration:
            return
        if metrics is not None and item is not RECONNECTED:
            metrics.stage.labels(stage="capture").observe(time.perf_counter() - t0)
            metrics.up.labels(camera=camera).set(1)
            window_frames += 1
            now = time.monotonic()
            if now - window_start >= 2.0:
                metrics.source_fps.labels(camera=camera).set(window_frames / (now - window_start))
                window_start, window_frames = now, 0
        yield item


def _raise_failed(sends: Sends) -> None:
    failure = sends.failure()
    if failure is not None:
        raise StreamError(f"a frame batch was not accepted by the broker: {failure!r}")


@dataclass
class CameraResult:
    camera_id: str
    stats: IngestStats = field(default_factory=IngestStats)
    error: str | None = None
    state: str | None = None   # "removed" or "restarted" by a reload of the cameras file


def load_cameras(path: Path, defaults: dict[str, Any]) -> list[IngestOptions]:
    """A cameras file: ``cameras: [{camera_id, source, options: {...}}]``; ``options`` takes any
    :class:`IngestOptions` field and overrides ``defaults`` (the command line's) for that camera.
    A camera's ``password_env`` or ``password_file`` may also sit next to its ``source``."""
    import dataclasses

    import yaml

    from soccerkd.errors import ConfigError

    try:
        doc = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cameras file {str(path)!r} cannot be read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"cameras file {str(path)!r} is not valid YAML: {' '.join(str(exc).split())}") from exc
    entries = doc.get("cameras") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"cameras file {str(path)!r} must hold 'cameras:', a non-empty list of "
                          f"{{camera_id, source, options}}")
    fields = {f.name for f in dataclasses.fields(IngestOptions)} - {"camera_id", "source"}
    cameras, seen = [], set()
    for i, entry in enumerate(entries):
        where = f"cameras file {str(path)!r}, camera {i + 1}"
        if not isinstance(entry, dict) or not entry.get("camera_id") or not entry.get("source"):
            raise ConfigError(f"{where}: needs camera_id and source, got {redact_url(repr(entry))}")
        unknown = set(entry) - {"camera_id", "source", "options", *CREDENTIAL_KEYS}
        options = entry.get("options") or {}
        unknown |= set(options) - fields if isinstance(options, dict) else {"options (not a mapping)"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; options take {sorted(fields)}")
        camera_id = str(entry["camera_id"])
        if camera_id in seen:
            raise ConfigError(f"{where}: camera_id {camera_id!r} appears twice")
        seen.add(camera_id)
        try:
            credentials = {k: entry[k] for k in CREDENTIAL_KEYS if k in entry}
            cameras.append(IngestOptions(camera_id=camera_id, source=str(entry["source"]),
                                         **{**defaults, **options, **credentials}))
        except (StreamError, TypeError) as exc:
            raise ConfigError(f"{where}: {exc}") from exc
    return cameras


def ingest_many(cameras: list[IngestOptions], *, producer: Any = None, metrics: Any = None,
                stop: threading.Event | None = None, bootstrap: str | None = None,
                progress: bool = False, kafka: Any = None,
                reload: Callable[[], list[IngestOptions]] | None = None,
                reload_now: threading.Event | None = None) -> list[CameraResult]:
    """Many cameras in one process: a capture-encode-send thread per camera, one shared
    producer. A camera whose source fails is logged and counted (``soccerkd_ingest_errors_total``)
    and the others go on. Ctrl-C, SIGTERM or ``stop`` ends every camera; each sends what it holds.

    With ``reload`` (it reads the cameras file again), SIGHUP or ``reload_now`` applies the
    file to the running set (:class:`stream.app.camera_set.CameraSet`). SIGHUP rather than a
    watched file: the change takes effect when the operator says the edit is complete, never on
    an editor's half-written save, and it is the signal daemons reload on (``kill -HUP``,
    ``docker kill -s HUP``). The process ends when no camera runs any more."""
    import signal

    from stream.app.camera_set import CameraSet
    from stream.kafka.config import KafkaConfig
    from stream.kafka.connection import make_producer

    own = producer is None
    if own:
        # kafka: a KafkaConfig with the security settings; else a plaintext one for the bootstrap
        producer = make_producer(kafka or KafkaConfig(bootstrap=bootstrap or cameras[0].bootstrap), client_id="ingest")
    stop = stop or threading.Event()
    reload_now = reload_now or threading.Event()
    cameras_set = CameraSet(producer, metrics=metrics, progress=progress and len(cameras) == 1 and reload is None)
    in_main = threading.current_thread() is threading.main_thread()
    previous = {}
    if in_main:
        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        if reload is not None:   # the handler only asks: the reload runs in this thread's loop below
            previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, lambda *_: reload_now.set())
    try:
        for options in cameras:
            cameras_set.start(options)
        while cameras_set.alive() and not stop.is_set():
            if reload_now.is_set() and reload is not None:
                reload_now.clear()
                cameras_set.reload(reload)
            stop.wait(0.2)
        cameras_set.stop_all()
        cameras_set.join(30)
    except KeyboardInterrupt:
        stop.set()
        cameras_set.stop_all()
        for r in cameras_set.results:
            r.stats.interrupted = True
        cameras_set.join(30)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        producer.flush()
        if own:
            producer.close()
    return cameras_set.results
