"""Fakes for the service's ports, so a pipeline test is a few lines (no Kafka, no torch).

* :class:`ScriptedPredictor` - probabilities from a function of the window (or of its frames).
* :class:`FakeClock` - a settable clock usable as ``clock=`` and ``perf=``.
* :class:`ListSource` / :class:`ListSink` - messages in, published records out.
* :class:`FakeFramesConsumer`, :class:`FakeProducer` and :func:`fake_kafka` - the Kafka clients
  of the serve loop, passed to :class:`~stream.app.service.StreamService` as ``connect=``.
* :func:`solid_batch` - a real JPEG frame batch of solid-colour frames.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from soccerkd.spec import ClipSpec, InputSpec

from stream.core.ledger import SourceRef
from stream.core.ports import FrameJob
from stream.core.windowing import ClipWindow
from stream.core.wire import MAGIC, EnvelopeError, FrameBatch, encode_frame_batch
from stream.inference.images import decode_image, encode_image


class FakeClock:
    """``clock()`` returns the current fake time; ``advance(s)`` moves it."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ScriptedPredictor:
    """A :class:`stream.core.ports.Predictor` whose output is ``script(window)``.

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

BAD_INPUT_T0 = 1_700_000_000_000_000_000   # capture time of the envelopes below (2023)


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




# -- Kafka-side fakes: the small interfaces the serve loop uses, for unit tests of the loop -----
class FakeFuture:
    """A send's future, already done (failed when ``error`` is given)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.exception = error
        self.is_done = True

    def failed(self) -> bool:
        return self.exception is not None

    def add_callback(self, fn: Callable[[Any], Any]) -> "FakeFuture":
        if self.exception is None:
            fn(None)
        return self


class FakeProducer:
    """kafka-python's producer as :class:`~stream.kafka.publisher.Publisher` uses it. Sends to
    ``fail_topics`` fail asynchronously; to ``raise_topics``, ``send`` raises. The transaction
    calls are recorded in ``calls``."""

    def __init__(self, fail_topics: Sequence[str] = (), raise_topics: Sequence[str] = ()) -> None:
        self.fail_topics, self.raise_topics = set(fail_topics), set(raise_topics)
        self.sent: list[tuple[str, bytes | None]] = []
        self.calls: list[str] = []
        self.closed = False

    def send(self, topic: str, *, key: bytes | None, value: bytes, headers: Any = None) -> FakeFuture:
        if topic in self.raise_topics:
            raise RuntimeError(f"send to {topic} raised")
        self.sent.append((topic, key))
        return FakeFuture(RuntimeError("delivery failed") if topic in self.fail_topics else None)

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        self.closed = True

    def begin_transaction(self) -> None:
        self.calls.append("begin")

    def send_offsets_to_transaction(self, offsets: Any, group_metadata: Any) -> None:
        self.calls.append("offsets")

    def commit_transaction(self) -> None:
        self.calls.append("commit")

    def abort_transaction(self) -> None:
        self.calls.append("abort")


TP = tuple[str, int]


class FakeFramesConsumer:
    """:class:`~stream.kafka.consumer.FramesConsumer`'s interface over plain Python state.

    :meth:`assign` plays the group giving partitions (the listener's ``assigned``), and
    :meth:`close` revokes whatever is assigned, as kafka-python does. ``progress``,
    ``lags`` and ``reachable`` are what the fetch watchdog, the lag gauge and ``/readyz`` read.
    """

    def __init__(self, records: Sequence[tuple[SourceRef, Any]] = ()) -> None:
        self.records = list(records)
        self.assignment: set[TP] = set()
        self.commits: list[tuple[str, dict[TP, int]]] = []
        self.rewinds: list[TP] = []
        self.resets: list[tuple[TP, int]] = []
        self.pauses: list[str] = []
        self.rejoins: list[str] = []
        self.missing_topics: set[str] = set()
        self.metadata: dict[TP, str] = {}
        self.progress: dict[TP, tuple[int, int]] = {}
        self.lags: dict[TP, int] = {}
        self.reachable = True
        self.paused = False
        self.closed = False
        self._listener: dict[str, Callable[[list[TP]], None]] = {}

    def topic_exists(self, topic: str) -> bool:
        return topic not in self.missing_topics

    def subscribe(self, topic: str, *, assigned: Callable[[list[TP]], None], revoked: Callable[[list[TP]], None],
                  lost: Callable[[list[TP]], None]) -> None:
        self._listener = {"assigned": assigned, "revoked": revoked, "lost": lost}

    def assign(self, tps: Sequence[TP]) -> None:
        self.assignment.update(tps)
        self._listener["assigned"](sorted(tps))

    def revoke(self, tps: Sequence[TP], *, lost: bool = False) -> None:
        self.assignment.difference_update(tps)
        self._listener["lost" if lost else "revoked"](sorted(tps))

    def group_busy(self) -> bool:
        return False

    def group_metadata(self) -> str:
        return "group-metadata"

    def rejoin(self, *, member_unknown: bool = False) -> None:
        self.rejoins.append("new member" if member_unknown else "rejoin")

    def poll(self, timeout_ms: int) -> list[tuple[SourceRef, Any]]:
        out, self.records = self.records, []
        return out

    def set_paused(self, paused: bool) -> None:
        self.pauses.append("pause" if paused else "resume")
        self.paused = paused

    def keep_paused(self) -> None:
        pass

    def committed_metadata(self, tp: TP) -> str | None:
        return self.metadata.get(tp)

    def commit(self, points: dict[TP, tuple[int, str]]) -> None:
        self.commits.append(("sync", {tp: offset for tp, (offset, _) in points.items()}))

    def commit_async(self, points: dict[TP, tuple[int, str]], *, on_error: Any = None) -> None:
        self.commits.append(("async", {tp: offset for tp, (offset, _) in points.items()}))

    def rewind(self, tps: Sequence[TP]) -> None:
        self.rewinds.extend(tps)

    def lag(self) -> dict[TP, int]:
        return dict(self.lags)

    def fetch_progress(self) -> dict[TP, tuple[int, int]]:
        return dict(self.progress)

    def fetch_state(self, tp: TP) -> str:
        return "fake"

    def reset_fetch(self, tp: TP, offset: int) -> None:
        self.resets.append((tp, offset))

    def broker_reachable(self, *, stale_after_s: float) -> bool:
        return self.reachable

    def close(self, *, timeout_s: float) -> None:
        if self.assignment and self._listener:
            self.revoke(sorted(self.assignment))
        self.closed = True


def fake_kafka(consumer: FakeFramesConsumer | None = None, producer: Any = None, *, transactional: bool = False,
               timeout_s: float = 30.0, dlq_topic: str = "frames-dlq",
               remake: Callable[[], Any] | None = None) -> Callable[[], Any]:
    """A ``connect`` for :class:`~stream.app.service.StreamService` that hands it these fakes
    (a :class:`FakeFramesConsumer` and a :class:`FakeProducer` behind the real publisher;
    ``remake``: the publisher's maker of a new transactional producer)."""
    from stream.kafka.clients import KafkaClients
    from stream.kafka.deadletters import DeadLetters
    from stream.kafka.publisher import Publisher

    def connect() -> KafkaClients:
        publisher = Publisher(producer if producer is not None else FakeProducer(), transactional=transactional,
                              timeout_s=timeout_s, remake=remake)
        return KafkaClients(consumer if consumer is not None else FakeFramesConsumer(), publisher,
                            DeadLetters(publisher, topic=dlq_topic, group="test", max_request_size=9 << 20))
    return connect


def scripted_worker(config: Any, max_seconds: float | None, results: Any, log_setup: tuple[str, str]) -> None:
    """A stand-in for ``serve --workers``' worker (:func:`stream.app.serve.serve_workers`'s
    ``target``): worker 0 exits with code 3 after half a second; the others serve until SIGTERM,
    then report their counts and exit 0, as a healthy worker does."""
    import signal
    import sys
    import threading
    import time

    if str(config.kafka.group_instance_id).endswith("-w0"):
        time.sleep(0.5)
        sys.exit(3)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait(120)
    results.put({"messages": 0})


def reloading_worker(config: Any, max_seconds: float | None, results: Any, log_setup: tuple[str, str]) -> None:
    """A stand-in for ``serve --workers``' worker that counts the SIGHUPs it gets until SIGTERM, then
    reports ``{"reloads": n}`` and exits 0. In ``$SOCCERKD_WORKER_DIR`` it touches
    ``<instance>.ready`` once its handlers are in and ``<instance>.hup<k>`` at its k-th SIGHUP, so a
    test knows when to signal the parent and when the signal has arrived."""
    import os
    import signal
    import threading
    from pathlib import Path

    marks = Path(os.environ["SOCCERKD_WORKER_DIR"])
    name = str(config.kafka.group_instance_id)
    reloads = [0]
    stop = threading.Event()

    def hup(*_: Any) -> None:
        reloads[0] += 1
        (marks / f"{name}.hup{reloads[0]}").touch()

    signal.signal(signal.SIGHUP, hup)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    (marks / f"{name}.ready").touch()
    stop.wait(120)
    results.put({"reloads": reloads[0]})
