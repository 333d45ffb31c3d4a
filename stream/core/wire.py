"""Wire formats of the service: the frame-batch envelope (frames topic) and action events (JSON).

Frame-batch envelope, version 1 (all integers big-endian; no pickle, nothing executable)::

    offset  size  field
    0       4     magic b"SKFB"
    4       1     schema version (1)
    5       1     encoding (1 = JPEG)
    6       2     camera id length L (1..255), then L bytes UTF-8 camera id
    .       8     sequence number of the first frame (u64)
    .       4     width (u32, > 0)
    .       4     height (u32, > 0)
    .       8     source fps (f64, finite, > 0)
    .       4     frame count K (1..MAX_FRAMES)
    .       8*K   capture timestamp of every frame, ns since the epoch (i64)
    .       4*K   byte length of every frame (u32, > 0)
    .       sum   the K encoded frames, back to back; nothing may follow

Decoding validates every field and raises one :class:`EnvelopeError` subclass per kind of fault,
so the service can put the message in the dead-letter topic with a precise reason.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any, Mapping

from stream.errors import StreamError

MAGIC = b"SKFB"
SCHEMA_VERSION = 1
MAX_FRAMES = 4096
MAX_CAMERA_ID_BYTES = 128
# Camera ids reach keys, metric labels, commit metadata and terminals: a plain, printable set only.
CAMERA_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
MAX_FPS = 1000.0
MAX_SEQ = 2 ** 63            # first_seq + frame count stays below: sequence arithmetic never overflows int64
MAX_CAPTURE_TS_NS = 2 ** 62  # about the year 2116; capture times are ns since the Unix epoch, >= 0
ENCODINGS = {1: "jpeg"}
_ENCODING_CODES = {name: code for code, name in ENCODINGS.items()}

_PREFIX = struct.Struct(">4sBBH")          # magic, version, encoding, camera id length
_FIXED = struct.Struct(">QIIdI")           # first seq, width, height, fps, count


class EnvelopeError(StreamError):
    """A frames-topic message is not a valid frame batch. ``reason`` is a short metric label."""

    reason = "invalid_envelope"


class TruncatedEnvelopeError(EnvelopeError):
    reason = "truncated"


class BadMagicError(EnvelopeError):
    reason = "bad_magic"


class UnsupportedVersionError(EnvelopeError):
    reason = "unsupported_version"


class UnknownEncodingError(EnvelopeError):
    reason = "unknown_encoding"


class BadCameraIdError(EnvelopeError):
    reason = "bad_camera_id"


class BadDimensionsError(EnvelopeError):
    reason = "bad_dimensions"


class BadFpsError(EnvelopeError):
    reason = "bad_fps"


class FrameCountError(EnvelopeError):
    reason = "bad_frame_count"


class FrameLengthError(EnvelopeError):
    """Frame lengths are zero or do not add up to the payload (includes trailing bytes)."""

    reason = "bad_frame_length"


class CorruptFrameError(EnvelopeError):
    """A frame's bytes do not decode as an image of the declared encoding."""

    reason = "corrupt_frame"


class KeyMismatchError(EnvelopeError):
    """The Kafka record key is not the envelope's camera id (so its partition may not be the
    camera's, and camera state is only consistent per partition)."""

    reason = "key_mismatch"


class BadSequenceError(EnvelopeError):
    """First sequence number so large that the batch's numbers would reach 2**63."""

    reason = "bad_sequence"


class BadTimestampError(EnvelopeError):
    """A capture timestamp before the Unix epoch or past MAX_CAPTURE_TS_NS."""

    reason = "bad_timestamp"


class NotJpegError(EnvelopeError):
    """A frame that does not start with the JPEG SOI marker (PNG, BMP, ...): only JPEG is accepted."""

    reason = "not_jpeg"


class LimitExceededError(EnvelopeError):
    """A batch over the service's ``limits.*`` (pixels, aspect ratio, decoded bytes), checked before decoding."""

    reason = "limit_exceeded"


class EmptyValueError(EnvelopeError):
    """A record with no value (a tombstone)."""

    reason = "empty_value"


class ProcessingError(EnvelopeError):
    """Decoding or preprocessing one message failed unexpectedly; the message is dead-lettered."""

    reason = "processing_error"


class UnreadableRecordError(EnvelopeError):
    """The Kafka client could not parse the record itself (a header key that is not UTF-8): its
    key, value and headers are unknown; the dead letter names where it was."""

    reason = "unreadable_record"


class FrameSizeMismatchError(EnvelopeError):
    """A decoded frame's size differs from the width/height in the header."""

    reason = "size_mismatch"


@dataclass(frozen=True)
class FrameBatch:
    """K consecutive encoded frames of one camera; frame i has sequence number ``first_seq + i``."""

    camera_id: str
    first_seq: int
    capture_ts_ns: tuple[int, ...]
    width: int
    height: int
    source_fps: float
    frames: tuple[bytes, ...]
    encoding: str = "jpeg"

    def __post_init__(self) -> None:
        if not isinstance(self.camera_id, str) or not CAMERA_ID_RE.fullmatch(self.camera_id):
            raise BadCameraIdError(f"camera_id must match {CAMERA_ID_RE.pattern}, got {str(self.camera_id)[:200]!r}")
        if not 0 <= self.first_seq <= MAX_SEQ - len(self.frames):
            raise BadSequenceError(f"first_seq must be in [0, 2**63 - frame count], got {self.first_seq!r}")
        if not 1 <= len(self.frames) <= MAX_FRAMES:
            raise FrameCountError(f"a batch holds 1..{MAX_FRAMES} frames, got {len(self.frames)}")
        if len(self.capture_ts_ns) != len(self.frames):
            raise FrameCountError(f"{len(self.capture_ts_ns)} timestamps for {len(self.frames)} frames")
        if not (0 < self.width < 2 ** 32 and 0 < self.height < 2 ** 32):
            raise BadDimensionsError(f"width and height must be > 0, got {self.width}x{self.height}")
        if not (math.isfinite(self.source_fps) and 0 < self.source_fps <= MAX_FPS):
            raise BadFpsError(f"source_fps must be in (0, {MAX_FPS:g}], got {self.source_fps!r}")
        if not all(0 <= ts <= MAX_CAPTURE_TS_NS for ts in self.capture_ts_ns):
            bad = next(ts for ts in self.capture_ts_ns if not 0 <= ts <= MAX_CAPTURE_TS_NS)
            raise BadTimestampError(f"capture timestamp {bad} ns is outside [0, 2**62] (1970 to about 2116)")
        if self.encoding not in _ENCODING_CODES:
            raise UnknownEncodingError(f"encoding must be one of {sorted(_ENCODING_CODES)}, got {self.encoding!r}")
        if any(len(f) == 0 for f in self.frames):
            raise FrameLengthError("frames must not be empty")

    @property
    def last_seq(self) -> int:
        return self.first_seq + len(self.frames) - 1

    @property
    def key(self) -> bytes:
        """The Kafka message key: the camera id, so one camera's batches stay in order."""
        return self.camera_id.encode("utf-8")


def encode_frame_batch(batch: FrameBatch) -> bytes:
    """The envelope bytes of ``batch`` (see the module docstring for the layout)."""
    cam = batch.camera_id.encode("utf-8")
    k = len(batch.frames)
    parts = [
        _PREFIX.pack(MAGIC, SCHEMA_VERSION, _ENCODING_CODES[batch.encoding], len(cam)), cam,
        _FIXED.pack(batch.first_seq, batch.width, batch.height, float(batch.source_fps), k),
        struct.pack(f">{k}q", *batch.capture_ts_ns),
        struct.pack(f">{k}I", *(len(f) for f in batch.frames)),
        *batch.frames,
    ]
    return b"".join(parts)


def decode_frame_batch(data: bytes) -> FrameBatch:
    """Parse and validate an envelope; raises the :class:`EnvelopeError` subclass for the fault."""
    view = memoryview(data)
    if len(view) < _PREFIX.size:
        raise TruncatedEnvelopeError(f"message has {len(view)} bytes, shorter than the {_PREFIX.size}-byte prefix")
    magic, version, encoding, cam_len = _PREFIX.unpack_from(view, 0)
    if magic != MAGIC:
        raise BadMagicError(f"magic is {bytes(magic)!r}, expected {MAGIC!r}: not a frame batch")
    if version != SCHEMA_VERSION:
        raise UnsupportedVersionError(f"schema version {version} is not supported (this service reads {SCHEMA_VERSION})")
    if encoding not in ENCODINGS:
        raise UnknownEncodingError(f"encoding code {encoding} is unknown (known: {ENCODINGS})")
    pos = _PREFIX.size
    if not 1 <= cam_len <= MAX_CAMERA_ID_BYTES:
        raise BadCameraIdError(f"camera id length {cam_len} is outside 1..{MAX_CAMERA_ID_BYTES}")
    _need(view, pos + cam_len + _FIXED.size, "camera id and fixed header")
    try:
        camera_id = bytes(view[pos:pos + cam_len]).decode("ascii")
    except UnicodeDecodeError as exc:
        raise BadCameraIdError(f"camera id is not ASCII: {bytes(view[pos:pos + cam_len])!r}") from exc
    if not CAMERA_ID_RE.fullmatch(camera_id):
        raise BadCameraIdError(f"camera id {camera_id!r} must match {CAMERA_ID_RE.pattern}")
    pos += cam_len
    first_seq, width, height, fps, count = _FIXED.unpack_from(view, pos)
    pos += _FIXED.size
    if width == 0 or height == 0:
        raise BadDimensionsError(f"frame size {width}x{height} has a zero side")
    if not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
        raise BadFpsError(f"source fps {fps!r} must be in (0, {MAX_FPS:g}]")
    if not 1 <= count <= MAX_FRAMES:
        raise FrameCountError(f"frame count {count} is outside 1..{MAX_FRAMES}")
    _need(view, pos + 12 * count, f"{count} timestamps and lengths")
    stamps = struct.unpack_from(f">{count}q", view, pos)
    pos += 8 * count
    lengths = struct.unpack_from(f">{count}I", view, pos)
    pos += 4 * count
    if any(n == 0 for n in lengths):
        raise FrameLengthError(f"frame {lengths.index(0)} has length 0")
    total = sum(lengths)
    if pos + total != len(view):
        kind = "truncated" if pos + total > len(view) else "followed by trailing bytes"
        raise (TruncatedEnvelopeError if pos + total > len(view) else FrameLengthError)(
            f"frame lengths add up to {total} bytes but {len(view) - pos} remain: payload {kind}")
    frames = []
    for n in lengths:
        frames.append(bytes(view[pos:pos + n]))
        pos += n
    return FrameBatch(camera_id=camera_id, first_seq=first_seq, capture_ts_ns=tuple(stamps), width=width,
                      height=height, source_fps=fps, frames=tuple(frames), encoding=ENCODINGS[encoding])


def _need(view: memoryview, end: int, what: str) -> None:
    if len(view) < end:
        raise TruncatedEnvelopeError(f"message has {len(view)} bytes, {what} need {end}")


_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}   # baseline, progressive, lossless...


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's frame header (SOF), read without decoding anything, so a
    frame's real size is checked before any pixel is allocated. Raises :class:`NotJpegError`
    without the SOI marker and :class:`CorruptFrameError` when no frame header comes first."""
    if data[:2] != b"\xff\xd8":
        raise NotJpegError(f"frame starts with {bytes(data[:4])!r}, not the JPEG SOI marker: only JPEG is accepted")
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            raise CorruptFrameError(f"JPEG has no marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:            # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:   # markers without a length
            pos += 2
            continue
        if marker in _SOF_MARKERS:
            if pos + 9 > n:
                break
            height = int.from_bytes(data[pos + 5:pos + 7], "big")
            width = int.from_bytes(data[pos + 7:pos + 9], "big")
            return width, height
        if marker in (0xDA, 0xD9):    # scan data or the end before any frame header
            break
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    raise CorruptFrameError(f"{len(data)}-byte JPEG has no frame header (SOF) before its scan data")


_PROGRESSIVE = frozenset({0xC2, 0xC6, 0xCA, 0xCE})


def jpeg_scans(data: bytes, *, limit: int) -> int:
    """How many scans a progressive JPEG holds (counted up to ``limit + 1``, then it stops), or 1
    for any other frame (a baseline scan codes every block, so its cost is bounded by its bytes;
    a malformed frame is left to :func:`jpeg_header_error`). Each progressive scan makes the
    decoder walk the whole coefficient buffer again, so hundreds of 23-byte scans are a
    "scan bomb": a 62 KB 4K frame that takes seconds to decode. Walks markers and finds each
    scan's end with ``bytes.find``, decoding nothing."""
    if data[:2] != b"\xff\xd8":
        return 1
    pos, n, scans, progressive = 2, len(data), 0, False
    while pos + 4 <= n and scans <= limit:
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD7:
            pos += 1 if marker == 0xFF else 2
            continue
        if marker == 0xD9:
            break
        if marker in _SOF_MARKERS:
            progressive = marker in _PROGRESSIVE
            if not progressive:
                return 1
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker != 0xDA:
            continue
        scans += 1
        while True:   # the scan's entropy-coded data runs to the next marker that is not RSTn or a stuffed 0xFF00
            pos = data.find(b"\xff", pos)
            if pos < 0 or pos + 1 >= n:
                return scans if progressive else 1
            follower = data[pos + 1]
            if follower == 0 or 0xD0 <= follower <= 0xD7:
                pos += 2
            elif follower == 0xFF:
                pos += 1
            else:
                break
    return scans if progressive else 1


def jpeg_header_error(data: bytes, width: int, height: int) -> EnvelopeError | None:
    """The frame's own JPEG header against the envelope's ``width`` x ``height``, before any
    decoding: not a JPEG, no frame header, or another size (a 600-byte "65000x65000" bomb) is
    returned as the error, and nothing is allocated for it."""
    try:
        size = jpeg_size(data)
    except EnvelopeError as exc:
        return exc
    if size != (width, height):
        return FrameSizeMismatchError(f"JPEG frame header says {size[0]}x{size[1]}, the envelope {width}x{height}")
    return None


# ---------------------------------------------------------------------------------------------
# Action events

EVENT_SCHEMA_VERSION = 1


def model_id(model_name: str, checkpoint_sha256: str) -> str:
    """The model identity that goes into event ids: name plus checkpoint hash."""
    return f"{model_name}@{checkpoint_sha256}"


def make_event_id(camera_id: str, start_seq: int, end_seq: int, model: str, epoch: int = 0) -> str:
    """Deterministic event id: the same camera, stream epoch, frame range and model always give the
    same id (epoch 0, a camera's first, gives the ids of before epochs existed)."""
    parts: list[Any] = [camera_id, int(start_seq), int(end_seq), model] + ([int(epoch)] if epoch else [])
    text = json.dumps(parts, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class ActionEvent:
    """One recognised action on one camera, covering frames ``start_seq..end_seq`` inclusive."""

    event_id: str
    camera_id: str
    label: str
    confidence: float
    start_seq: int
    end_seq: int
    start_capture_ts_ns: int
    end_capture_ts_ns: int
    model_name: str
    checkpoint_sha256: str
    emitted_at: float
    num_windows: int = 1
    schema_version: int = EVENT_SCHEMA_VERSION
    epoch: int = 0   # the camera's stream epoch: 0, or the capture time (ns) of the epoch's first frame

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode("utf-8")

    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers: the id and the model's identity, so that a subscriber can route or drop
        events by model without parsing the value."""
        return [("event_id", self.event_id.encode()), ("model_name", self.model_name.encode()),
                ("checkpoint_sha256", self.checkpoint_sha256.encode()),
                ("schema_version", str(self.schema_version).encode())]

    @classmethod
    def from_json(cls, data: bytes | str | Mapping[str, Any]) -> "ActionEvent":
        """The event in ``data``; ``ValueError`` naming the field when one is missing, unknown or
        of the wrong type (a well-formed JSON event with ``"emitted_at": "soon"`` or a confidence
        of ``1e300`` must not reach a reader's arithmetic)."""
        d = json.loads(data) if isinstance(data, (bytes, str)) else dict(data)
        if not isinstance(d, dict):
            raise ValueError(f"an event is a JSON object, got {type(d).__name__}")
        for name, value in d.items():
            kind = _EVENT_FIELDS.get(name)
            if kind is None:
                raise ValueError(f"unknown event field {str(name)[:40]!r}")
            if kind is float:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            else:
                ok = isinstance(value, kind) and not isinstance(value, bool)
            if not ok:
                raise ValueError(f"event field {name!r} must be {'a finite number' if kind is float else kind.__name__}, "
                                 f"got {str(value)[:40]!r}")
        missing = [name for name in _EVENT_REQUIRED if name not in d]
        if missing:
            raise ValueError(f"event field(s) missing: {', '.join(missing)}")
        if "confidence" in d and not 0.0 <= d["confidence"] <= 1.0:
            raise ValueError(f"event field 'confidence' must be within [0, 1], got {d['confidence']!r}")
        if "emitted_at" in d and not 0.0 <= d["emitted_at"] < 1e11:   # seconds: within year 5138
            raise ValueError(f"event field 'emitted_at' must be a Unix time in seconds, got {d['emitted_at']!r}")
        return cls(**d)


# each field's type, from the annotations (strings here: ``from __future__ import annotations``)
_EVENT_FIELDS: dict[str, type] = {f.name: {"str": str, "int": int, "float": float}[str(f.type)]
                                  for f in fields(ActionEvent)}
_EVENT_REQUIRED = tuple(f.name for f in fields(ActionEvent) if f.default is MISSING)


@dataclass(frozen=True)
class WindowPrediction:
    """Raw per-window output (optional second topic): the window's frames and class probabilities."""

    camera_id: str
    start_seq: int
    end_seq: int
    end_capture_ts_ns: int
    probabilities: dict[str, float]
    model_name: str
    checkpoint_sha256: str
    filled_frames: int = 0
    schema_version: int = EVENT_SCHEMA_VERSION

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode("utf-8")
