"""Camera ingester: any OpenCV source -> JPEG frame batches on the frames topic (key = camera id).

Sources: a video file, a frame folder, an RTSP/HTTP URL, or a webcam index (``"0"``). Capture
timestamps come from the source clock for files and folders (start wall time + media position,
so "real-time" replay gives meaningful latencies) and from the wall clock for live sources.
Pacing ``realtime`` sends file frames at their media time; ``fast`` sends as fast as possible.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

from soccerkd.errors import DataError

from stream.errors import StreamError
from stream.messages import FrameBatch, encode_frame_batch, encode_image


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

    def __post_init__(self) -> None:
        if self.frames_per_batch < 1:
            raise StreamError(f"frames_per_batch must be >= 1, got {self.frames_per_batch!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise StreamError(f"jpeg_quality must be 1..100, got {self.jpeg_quality!r}")
        if self.max_side < 16:
            raise StreamError(f"max_side must be >= 16, got {self.max_side!r}")
        if self.pacing not in ("realtime", "fast"):
            raise StreamError(f"pacing must be 'realtime' or 'fast', got {self.pacing!r}")


@dataclass
class IngestStats:
    frames: int = 0
    batches: int = 0
    bytes: int = 0
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class OpenedSource:
    frames: Iterator[tuple[Any, int | None]]   # (RGB uint8 frame, media time in ns or None if live)
    fps: float
    live: bool


def is_live(source: str) -> bool:
    return source.isdigit() or source.lower().startswith(("rtsp://", "rtmp://", "http://", "https://", "udp://"))


def open_source(source: str, *, folder_fps: float = 25.0, loop: bool = False) -> OpenedSource:
    """Open ``source`` for sequential reading; file sources loop when ``loop`` is set."""
    import cv2

    path = Path(source)
    if path.is_dir():
        from soccerkd.data.decode import list_frame_files

        files = list_frame_files(path)
        if not files:
            raise DataError(f"frame folder {source!r} holds no images")

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
        raise DataError(f"source {source!r} is not a file, folder, URL or webcam index")
    target: Any = int(source) if source.isdigit() else source
    cap = cv2.VideoCapture(target)
    if not cap.isOpened():
        raise DataError(f"OpenCV cannot open source {source!r}")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    fps = fps if 0 < fps < 1000 else 25.0

    def video() -> Iterator[tuple[Any, int | None]]:
        k = 0
        try:
            while True:
                ok, img = cap.read()
                if not ok:
                    if live or not loop or k == 0:
                        return
                    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    continue
                yield cv2.cvtColor(img, cv2.COLOR_BGR2RGB), (None if live else int(k * 1e9 / fps))
                k += 1
        finally:
            cap.release()

    return OpenedSource(video(), fps, live)


def _shrink(rgb: Any, max_side: int) -> Any:
    import cv2

    h, w = rgb.shape[:2]
    if max(h, w) <= max_side:
        return rgb
    scale = max_side / max(h, w)
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def frame_batches(opened: OpenedSource, options: IngestOptions, *, anchor_ns: int | None = None,
                  sleep: Callable[[float], None] = time.sleep,
                  now_ns: Callable[[], int] = time.time_ns) -> Iterator[FrameBatch]:
    """Encode, timestamp, pace and group frames into batches (the last one may be shorter)."""
    anchor = now_ns() if anchor_ns is None else anchor_ns
    buf: list[bytes] = []
    stamps: list[int] = []
    seq = options.start_seq
    size: tuple[int, int] | None = None
    n = 0

    def flush() -> FrameBatch:
        assert size is not None
        b = FrameBatch(camera_id=options.camera_id, first_seq=seq - len(buf), capture_ts_ns=tuple(stamps),
                       width=size[0], height=size[1], source_fps=opened.fps, frames=tuple(buf))
        buf.clear()
        stamps.clear()
        return b

    for rgb, media_ns in opened.frames:
        if options.max_frames is not None and n >= options.max_frames:
            break
        rgb = _shrink(rgb, options.max_side)
        shape = (rgb.shape[1], rgb.shape[0])
        if size is not None and shape != size and buf:
            yield flush()
        size = shape
        if media_ns is None:
            ts = now_ns()
        else:
            ts = anchor + media_ns
            if options.pacing == "realtime":
                ahead = (ts - now_ns()) / 1e9
                if ahead > 0:
                    sleep(ahead)
        buf.append(encode_image(rgb, quality=options.jpeg_quality))
        stamps.append(ts)
        seq += 1
        n += 1
        if len(buf) >= options.frames_per_batch:
            yield flush()
    if buf:
        yield flush()


def ingest(options: IngestOptions, *, producer: Any = None, progress: bool = True,
           should_stop: Callable[[], bool] = lambda: False) -> IngestStats:
    """Run the ingester until the source ends, ``should_stop()`` or Ctrl-C; always flushes."""
    from stream.config import KafkaConfig
    from stream.kafka import make_producer

    own = producer is None
    if own:
        producer = make_producer(KafkaConfig(bootstrap=options.bootstrap), client_id=f"ingest-{options.camera_id}")
    opened = open_source(options.source, folder_fps=options.folder_fps, loop=options.loop)
    stats = IngestStats()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(unit="frame", desc=f"ingest {options.camera_id}", dynamic_ncols=True)
    t0 = time.perf_counter()
    futures: list[Any] = []
    try:
        for batch in frame_batches(opened, options):
            value = encode_frame_batch(batch)
            futures.append(producer.send(options.topic, key=batch.key, value=value))
            stats.frames += len(batch.frames)
            stats.batches += 1
            stats.bytes += len(value)
            if bar is not None:
                bar.update(len(batch.frames))
                bar.set_postfix(fps=f"{stats.frames / max(1e-9, time.perf_counter() - t0):.1f}",
                                MB=f"{stats.bytes / 1e6:.1f}", refresh=False)
            if len(futures) > 256:
                futures = [f for f in futures if not f.is_done or f.failed()]
                _raise_failed(futures)
            if should_stop():
                break
    except KeyboardInterrupt:
        stats.interrupted = True
    finally:
        producer.flush()
        stats.seconds = time.perf_counter() - t0
        if bar is not None:
            bar.close()
        if own:
            producer.close()
    _raise_failed(futures)
    return stats


def _raise_failed(futures: list[Any]) -> None:
    failed = [f for f in futures if f.is_done and f.failed()]
    if failed:
        raise StreamError(f"{len(failed)} frame batch(es) were not accepted by the broker; first error: "
                          f"{failed[0].exception!r}")
