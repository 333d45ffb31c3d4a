"""Frame-batch envelope round trip and every validation error; event-id determinism."""

import struct

import numpy as np
import pytest

from stream.core import wire as m
from stream.dev.testing import solid_batch
from stream.inference.images import decode_image, encode_image


def _batch(**kw):
    d = dict(camera_id="cam-1", first_seq=42, capture_ts_ns=(10, 20), width=16, height=12, source_fps=25.0,
             frames=(b"\xff\xd8abc", b"\xff\xd8de"))
    d.update(kw)
    return m.FrameBatch(**d)


def test_round_trip_keeps_every_field():
    b = _batch(camera_id="stadium-2:cam_7.main")
    data = m.encode_frame_batch(b)
    assert data[:4] == m.MAGIC
    assert m.decode_frame_batch(data) == b
    assert b.last_seq == 43 and b.key == b"stadium-2:cam_7.main"
    for bad in ("caméra-7", "cam 7", "cam\x1b[31m", "x" * 129):   # ids reach keys, labels and terminals
        with pytest.raises(m.BadCameraIdError):
            _batch(camera_id=bad)


def test_real_jpeg_frames_decode_to_header_size():
    b = solid_batch("c", 0, [(200, 10, 10)] * 3, width=16, height=12)
    out = m.decode_frame_batch(m.encode_frame_batch(b))
    img = decode_image(out.frames[0], width=16, height=12)
    assert img.shape == (12, 16, 3) and img[..., 0].mean() > 150  # RGB order


def _corrupt(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new):]


GOOD = m.encode_frame_batch(_batch())
CAM = 4 + 1 + 1 + 2  # prefix size; camera id "cam-1" follows
FIXED = CAM + 5      # first seq, width, height, fps, count


@pytest.mark.parametrize("data, error", [
    (GOOD[:5], m.TruncatedEnvelopeError),
    (GOOD[:-1], m.TruncatedEnvelopeError),
    (GOOD[:FIXED + 10], m.TruncatedEnvelopeError),
    (GOOD + b"x", m.FrameLengthError),
    (_corrupt(GOOD, 0, b"JUNK"), m.BadMagicError),
    (_corrupt(GOOD, 4, b"\x09"), m.UnsupportedVersionError),
    (_corrupt(GOOD, 5, b"\x07"), m.UnknownEncodingError),
    (_corrupt(GOOD, 6, b"\x00\x00"), m.BadCameraIdError),
    (_corrupt(GOOD, CAM, b"\xff\xfe"), m.BadCameraIdError),
    (_corrupt(GOOD, FIXED + 8, struct.pack(">I", 0)), m.BadDimensionsError),
    (_corrupt(GOOD, FIXED + 16, struct.pack(">d", float("nan"))), m.BadFpsError),
    (_corrupt(GOOD, FIXED + 16, struct.pack(">d", -25.0)), m.BadFpsError),
    (_corrupt(GOOD, FIXED + 24, struct.pack(">I", 0)), m.FrameCountError),
    (_corrupt(GOOD, FIXED + 24, struct.pack(">I", m.MAX_FRAMES + 1)), m.FrameCountError),
    (_corrupt(GOOD, FIXED + 28 + 16, struct.pack(">I", 0)), m.FrameLengthError),
    (b"", m.TruncatedEnvelopeError),
])
def test_every_validation_error(data, error):
    with pytest.raises(error) as info:
        m.decode_frame_batch(data)
    assert isinstance(info.value, m.EnvelopeError) and info.value.reason


def test_corrupt_jpeg_and_size_mismatch():
    with pytest.raises(m.CorruptFrameError):
        decode_image(b"\xff\xd8not a jpeg", width=4, height=4)
    jpeg = encode_image(np.zeros((12, 16, 3), np.uint8))
    with pytest.raises(m.FrameSizeMismatchError):
        decode_image(jpeg, width=32, height=12)


@pytest.mark.parametrize("kw, error", [
    (dict(camera_id=""), m.BadCameraIdError),
    (dict(capture_ts_ns=(1,)), m.FrameCountError),
    (dict(frames=(), capture_ts_ns=()), m.FrameCountError),
    (dict(width=0), m.BadDimensionsError),
    (dict(source_fps=0.0), m.BadFpsError),
    (dict(encoding="png"), m.UnknownEncodingError),
    (dict(frames=(b"", b"x")), m.FrameLengthError),
])
def test_construction_validates(kw, error):
    with pytest.raises(error):
        _batch(**kw)


def test_event_id_is_deterministic_and_sensitive():
    mid = m.model_id("tsm_resnet18", "ab" * 32)
    a = m.make_event_id("cam", 0, 15, mid)
    assert a == m.make_event_id("cam", 0, 15, mid) and len(a) == 32
    assert len({a, m.make_event_id("cam2", 0, 15, mid), m.make_event_id("cam", 1, 15, mid),
                m.make_event_id("cam", 0, 16, mid), m.make_event_id("cam", 0, 15, m.model_id("x", "ab" * 32))}) == 5


def test_event_json_round_trip():
    ev = m.ActionEvent(event_id="e", camera_id="c", label="kick", confidence=0.9, start_seq=0, end_seq=7,
                       start_capture_ts_ns=1, end_capture_ts_ns=2, model_name="n", checkpoint_sha256="h",
                       emitted_at=3.0)
    assert m.ActionEvent.from_json(ev.to_json()) == ev
    # the headers carry the id and the model's identity, so a subscriber can route by model unparsed
    assert dict(ev.headers()) == {"event_id": b"e", "model_name": b"n", "checkpoint_sha256": b"h",
                                  "schema_version": str(m.EVENT_SCHEMA_VERSION).encode()}
