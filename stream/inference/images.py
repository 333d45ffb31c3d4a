"""JPEG <-> RGB arrays with OpenCV, checked against the envelope's declared size (the pure
header parsing lives in :mod:`stream.core.wire`)."""

from __future__ import annotations

from typing import Any

from stream.core.wire import CorruptFrameError, FrameSizeMismatchError, jpeg_header_error
from stream.errors import StreamError


def decode_image(data: bytes, *, width: int, height: int) -> Any:
    """Decode one JPEG to an RGB ``H×W×3`` uint8 array, checking it against the header size
    (from the JPEG's own frame header first, so a lying one is refused before decoding)."""
    import cv2
    import numpy as np

    bad = jpeg_header_error(data, width, height)
    if bad is not None:
        raise bad
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise CorruptFrameError(f"{len(data)}-byte frame does not decode as JPEG")
    if img.shape[0] != height or img.shape[1] != width:
        raise FrameSizeMismatchError(f"frame decodes to {img.shape[1]}x{img.shape[0]}, header says {width}x{height}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def encode_image(rgb: Any, *, quality: int = 85) -> bytes:
    """JPEG bytes of an RGB ``H×W×3`` uint8 array."""
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise StreamError(f"JPEG encoding failed for an array of shape {getattr(rgb, 'shape', None)}")
    return buf.tobytes()
