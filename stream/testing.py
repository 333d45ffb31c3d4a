"""Fakes for the service's ports, so a pipeline test is a few lines (no Kafka, no torch).

* :class:`ScriptedPredictor` - probabilities from a function of the window (or of its frames).
* :class:`FakeClock` - a settable clock usable as ``clock=`` and ``perf=``.
* :class:`ListSource` / :class:`ListSink` - messages in, published records out.
* :func:`solid_batch` - a real JPEG frame batch of solid-colour frames.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from soccerkd.spec import ClipSpec, InputSpec

from stream.messages import MAGIC, EnvelopeError, FrameBatch, decode_image, encode_frame_batch, encode_image
from stream.pipeline import SourceRef
from stream.preprocess import FrameJob
from stream.windowing import ClipWindow


class FakeClock:
    """``clock()`` returns the current fake time; ``advance(s)`` moves it."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ScriptedPredictor:
    """A :class:`stream.inference.Predictor` whose output is ``script(window)``.

    Frames are decoded for real (OpenCV, with the envelope's size check) and preprocessed to their
    mean RGB (a 3-tuple of floats). ``preprocessed`` counts prepared frames, so tests can check
    "once per frame"; ``refs`` counts references held (prepare + retain - release), so tests can
    check that nothing leaks. The default script says class 0 with certainty when the window's
    mean red is above 128, else class 1.
    """

    def __init__(self, script: Callable[[ClipWindow[Any]], Sequence[float]] | None = None, *,
                 spec: InputSpec | None = None, model_name: str = "scripted", checkpoint_sha256: str = "0" * 64):
        self.input_spec = spec or InputSpec(clip=ClipSpec(num_frames=4, frame_stride=1), size=8, resize=8,
                                            class_names=("red", "other"))
        self.model_name = model_name
        self.checkpoint_sha256 = checkpoint_sha256
        self.script = script or _red_script
        self.preprocessed = 0
        self.refs = 0
        self.batches: list[int] = []

    def prepare(self, jobs: Sequence[FrameJob]) -> list[Any]:
        out: list[Any] = []
        for job in jobs:
            try:
                rgb = decode_image(job.data, width=job.width, height=job.height)
            except EnvelopeError as exc:
                out.append(exc)
                continue
            out.append(tuple(float(rgb[..., c].mean()) for c in range(3)))
            self.preprocessed += 1
            self.refs += 1
        return out

    def start_prepare(self, jobs: Sequence[FrameJob]) -> Callable[[], list[Any]]:
        out = self.prepare(jobs)
        return lambda: out

    def retain(self, payloads: Sequence[Any]) -> None:
        self.refs += len(payloads)

    def release(self, payloads: Sequence[Any]) -> None:
        self.refs -= len(payloads)
        if self.refs < 0:
            raise AssertionError("more payload references released than taken")

    def predict(self, windows: Sequence[ClipWindow[Any]]) -> Any:
        import numpy as np

        self.batches.append(len(windows))
        return np.asarray([list(self.script(w)) for w in windows], dtype=np.float64)


def _red_script(window: ClipWindow[Any]) -> Sequence[float]:
    red = sum(f[0] for f in window.frames) / len(window.frames)
    return (1.0, 0.0) if red > 128 else (0.0, 1.0)


def solid_batch(camera_id: str, first_seq: int, colours: Sequence[tuple[int, int, int]], *, width: int = 16,
                height: int = 12, fps: float = 25.0, t0_ns: int = 1_700_000_000_000_000_000) -> FrameBatch:
    """A frame batch of solid-colour JPEG frames; frame ``i`` is captured at ``t0 + seq / fps``."""
    import numpy as np

    frames, stamps = [], []
    for i, rgb in enumerate(colours):
        img = np.empty((height, width, 3), dtype=np.uint8)
        img[...] = rgb
        frames.append(encode_image(img, quality=95))
        stamps.append(t0_ns + int((first_seq + i) * 1e9 / fps))
    return FrameBatch(camera_id=camera_id, first_seq=first_seq, capture_ts_ns=tuple(stamps), width=width,
                      height=height, source_fps=fps, frames=tuple(frames))


@dataclass
class ListSource:
    """Messages as a fake frames topic partition: iterate to get ``(value, SourceRef)``."""

    values: list[bytes] = field(default_factory=list)
    topic: str = "frames"
    partition: int = 0

    def add(self, batch: FrameBatch | bytes) -> None:
        self.values.append(batch if isinstance(batch, bytes) else encode_frame_batch(batch))

    def __iter__(self) -> Iterator[tuple[bytes, SourceRef]]:
        for offset, value in enumerate(self.values):
            yield value, SourceRef(self.topic, self.partition, offset)


@dataclass
class ListSink:
    """Records a fake producer received: ``(topic, key, value, headers)``."""

    records: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]] = field(default_factory=list)

    def send(self, topic: str, *, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]] | None = None) -> None:
        self.records.append((topic, key, value, list(headers or [])))

    def values(self, topic: str) -> list[bytes]:
        return [v for t, _, v, _ in self.records if t == topic]


class MjpegServer:
    """A live camera for tests: an HTTP MJPEG stream (``multipart/x-mixed-replace``, what IP
    cameras serve) of ``frames(i)`` at ``fps`` on 127.0.0.1, that OpenCV opens like any camera.

    :meth:`outage` drops every connection and refuses new ones for a while, then the camera
    comes back and frame numbering continues, as a camera whose network link failed would.
    """

    def __init__(self, frame: Callable[[int], Any] | None = None, *, fps: float = 25.0, size=(96, 72)) -> None:
        import http.server
        import socketserver
        import threading

        import numpy as np

        self.fps, self.size = fps, size
        self.frame = frame or (lambda i: np.full((size[1], size[0], 3), (i * 7) % 256, np.uint8))
        self.index = 0            # next frame number served
        self.down = threading.Event()
        self.connections = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                import time

                import cv2

                if owner.down.is_set():
                    self.send_error(503, "camera down")
                    return
                owner.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while not owner.down.is_set() and not owner._closed:
                        ok, jpg = cv2.imencode(".jpg", owner.frame(owner.index))
                        body = jpg.tobytes()
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                         % len(body) + body + b"\r\n")
                        owner.index += 1
                        time.sleep(1.0 / owner.fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self._closed = False
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/camera.mjpg"

    def start(self) -> "MjpegServer":
        self._thread.start()
        return self

    def outage(self, seconds: float) -> None:
        """Drop the stream now and refuse connections for ``seconds`` (blocks that long)."""
        import time

        self.down.set()
        time.sleep(seconds)
        self.down.clear()

    def stop(self) -> None:
        self._closed = True
        self._server.shutdown()
        self._server.server_close()


# -- the bad-input corpus: hostile or broken frames messages and the dead-letter reason of each --
BAD_INPUT_T0 = 1_700_000_000_000_000_000


def jpeg(w: int = 64, h: int = 48, value: int = 120, gray: bool = False) -> bytes:
    import cv2
    import numpy as np

    img = np.full((h, w, 3), value, np.uint8)
    if gray:
        ok, buf = cv2.imencode(".jpg", img[..., 0])
        return buf.tobytes()
    return encode_image(img)


def envelope(*, camera=b"cam-1", version=1, encoding=1, first_seq=0, width=64, height=48, fps=25.0, frames=None,
             stamps=None, count=None, lengths=None, trailing=b"", cut=None) -> bytes:
    """Raw envelope bytes with any field set, valid or not (the encoder refuses invalid ones)."""
    frames = [jpeg()] * 4 if frames is None else frames
    stamps = [BAD_INPUT_T0 + i * 40_000_000 for i in range(len(frames))] if stamps is None else stamps
    count = len(frames) if count is None else count
    lengths = [len(f) for f in frames] if lengths is None else lengths
    data = (struct.pack(">4sBBH", MAGIC, version, encoding, len(camera)) + camera
            + struct.pack(">QIIdI", first_seq, width, height, fps, count)
            + struct.pack(f">{len(stamps)}q", *stamps) + struct.pack(f">{len(lengths)}I", *lengths)
            + b"".join(frames) + trailing)
    return data if cut is None else data[:cut]


def png() -> bytes:
    import cv2
    import numpy as np

    return cv2.imencode(".png", np.zeros((48, 64, 3), np.uint8))[1].tobytes()


def bmp() -> bytes:
    import cv2
    import numpy as np

    return cv2.imencode(".bmp", np.zeros((48, 64, 3), np.uint8))[1].tobytes()


def lying_header(w: int, h: int) -> bytes:
    """A real 64x48 JPEG whose frame header (SOF0) claims w x h: a decompression bomb's shape."""
    data = bytearray(jpeg())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def bad_input_corpus() -> dict[str, tuple[bytes | None, bytes, str]]:
    """``{kind: (value, record key, dead-letter reason)}``: every kind of bad frames message the
    service documents (tests/unit/stream/test_stream_badinput.py, the soak, the fuzzer)."""
    good = envelope()
    return {
        "empty": (b"", b"cam-1", "truncated"),
        "three_bytes": (b"SKF", b"cam-1", "truncated"),
        "tombstone": (None, b"cam-1", "empty_value"),
        "bad_magic": (b"XXXX" + good[4:], b"cam-1", "bad_magic"),
        "json_text": (b'{"camera_id": "cam-1", "frames": []}', b"cam-1", "bad_magic"),
        "version_2": (envelope(version=2), b"cam-1", "unsupported_version"),
        "encoding_9": (envelope(encoding=9), b"cam-1", "unknown_encoding"),
        "camera_ansi": (envelope(camera=b"cam\x1b[31m"), b"cam\x1b[31m", "bad_camera_id"),
        "camera_nul": (envelope(camera=b"cam\x00"), b"cam\x00", "bad_camera_id"),
        "camera_space": (envelope(camera=b"cam 1"), b"cam 1", "bad_camera_id"),
        "camera_utf8": (envelope(camera="caméra".encode()), "caméra".encode(), "bad_camera_id"),
        "camera_not_utf8": (envelope(camera=b"\xff\xfe"), b"\xff\xfe", "bad_camera_id"),
        "camera_129": (envelope(camera=b"c" * 129), b"c" * 129, "bad_camera_id"),
        "camera_length_0": (envelope(camera=b""), b"", "bad_camera_id"),
        "width_0": (envelope(width=0), b"cam-1", "bad_dimensions"),
        "height_0": (envelope(height=0), b"cam-1", "bad_dimensions"),
        "fps_0": (envelope(fps=0.0), b"cam-1", "bad_fps"),
        "fps_negative": (envelope(fps=-25.0), b"cam-1", "bad_fps"),
        "fps_nan": (envelope(fps=float("nan")), b"cam-1", "bad_fps"),
        "fps_inf": (envelope(fps=float("inf")), b"cam-1", "bad_fps"),
        "fps_1e300": (envelope(fps=1e300), b"cam-1", "bad_fps"),
        "count_0": (envelope(frames=[], count=0), b"cam-1", "bad_frame_count"),
        "count_5000": (envelope(count=5000), b"cam-1", "bad_frame_count"),
        "truncated_stamps": (envelope(cut=len(MAGIC) + 4 + 5 + 28 + 8), b"cam-1", "truncated"),
        "frame_length_0": (envelope(lengths=[0, 1, 1, 1]), b"cam-1", "bad_frame_length"),
        "trailing_bytes": (envelope(trailing=b"xx"), b"cam-1", "bad_frame_length"),
        "truncated_payload": (good[:-10], b"cam-1", "truncated"),
        "seq_2_64_minus_1": (envelope(first_seq=2 ** 64 - 1), b"cam-1", "bad_sequence"),
        "seq_near_2_63": (envelope(first_seq=2 ** 63 - 2), b"cam-1", "bad_sequence"),
        "timestamp_negative": (envelope(stamps=[-1, 0, 1, 2]), b"cam-1", "bad_timestamp"),
        "timestamp_year_2262": (envelope(stamps=[2 ** 63 - 1] * 4), b"cam-1", "bad_timestamp"),
        "key_other_camera": (good, b"cam-2", "key_mismatch"),
        "key_null": (good, b"", "key_mismatch"),
        "png_frame": (envelope(frames=[png()]), b"cam-1", "not_jpeg"),
        "bmp_frame": (envelope(frames=[bmp()]), b"cam-1", "not_jpeg"),
        "garbage_after_soi": (envelope(frames=[b"\xff\xd8garbage" * 4]), b"cam-1", "corrupt_frame"),
        "soi_then_eoi": (envelope(frames=[b"\xff\xd8\xff\xd9"]), b"cam-1", "corrupt_frame"),
        "bomb_header_65000": (envelope(frames=[lying_header(65000, 65000)]), b"cam-1", "size_mismatch"),
        "smaller_real_frame": (envelope(frames=[jpeg(32, 24)]), b"cam-1", "size_mismatch"),
        "pixels_over_limit": (envelope(width=65000, height=65000, frames=[lying_header(65000, 65000)]), b"cam-1",
                              "limit_exceeded"),
        "aspect_1x65000": (envelope(width=1, height=65000, frames=[lying_header(1, 65000)]), b"cam-1", "limit_exceeded"),
        "decoded_bytes_over_limit": (envelope(width=3840, height=2160, frames=[lying_header(3840, 2160)] * 30),
                                     b"cam-1", "limit_exceeded"),
    }


