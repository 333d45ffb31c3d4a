"""The bad-input corpus: every kind of hostile or broken frames message the service documents,
with the dead-letter reason each must get (tests/unit/stream/test_stream_badinput.py, the soak,
the fuzzer)."""

from __future__ import annotations

import struct

from stream.core.wire import MAGIC
from stream.dev.testing import bmp, envelope, jpeg, png


def lying_header(w: int, h: int) -> bytes:
    """A real 64x48 JPEG whose frame header (SOF0) claims w x h: a decompression bomb's shape."""
    data = bytearray(jpeg())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def progressive(w: int = 64, h: int = 48, *, extra_scans: int = 0, claims: tuple[int, int] | None = None) -> bytes:
    """A real progressive JPEG (libjpeg's 10-scan script), its smallest scan repeated
    ``extra_scans`` more times before the end: the shape of a "scan bomb", each scan one more
    walk of the whole coefficient buffer for the decoder. ``claims``: its frame header (SOF2)
    says that size instead."""
    import cv2
    import numpy as np

    from stream.core.wire import jpeg_scans

    img = (np.indices((h, w)).sum(0) % 256).astype(np.uint8)
    data = bytearray(cv2.imencode(".jpg", np.dstack([img] * 3), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes())
    assert jpeg_scans(bytes(data), limit=100) == 10
    if extra_scans:
        sos = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xDA]
        ends = sos[1:] + [len(data) - 2]   # each scan runs to the next one; the last to EOI
        start, end = min(zip(sos, ends), key=lambda se: se[1] - se[0])
        data[-2:-2] = bytes(data[start:end]) * extra_scans
    if claims is not None:
        sof = data.index(b"\xff\xc2")
        data[sof + 5:sof + 9] = struct.pack(">HH", claims[1], claims[0])
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
        # round two (issue 22): a scan bomb, decoding work over the budget, many tiny frames
        "progressive_scan_bomb": (envelope(frames=[progressive(extra_scans=300)]), b"cam-1", "corrupt_frame"),
        "decode_work_over_limit": (envelope(width=4096, height=2304, frames=[progressive(claims=(4096, 2304))] * 12),
                                   b"cam-1", "limit_exceeded"),
        "tiny_frames_4096": (envelope(width=16, height=16, frames=[jpeg(16, 16)] * 4096), b"cam-1", "limit_exceeded"),
    }
