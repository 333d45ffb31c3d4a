"""JPEG <-> RGB arrays with OpenCV, checked against the envelope's declared size (the pure
header parsing lives in :mod:`stream.core.wire`)."""

from __future__ import annotations

from typing import Any

from stream.core.wire import CorruptFrameError, FrameSizeMismatchError, jpeg_header_error
from stream.errors import StreamError

#: The one rule of both decoders (OpenCV on the CPU, nvJPEG on the GPU): a frame's EXIF orientation
#: tag is ignored and its pixels are used in stored order. A camera frame is a sensor-order image
#: whose size is the envelope's ``width x height`` (checked against the JPEG's own frame header);
#: applying the tag would turn an orientation 5-8 frame into ``height x width`` (a size mismatch)
#: and give an orientation 2-4 frame other pixels than the same frame untagged, and only on the
#: decoder that honours it (OpenCV by default; torchvision's ``decode_jpeg`` by default not).
IGNORE_ORIENTATION = True


def decode_image(data: bytes, *, width: int, height: int) -> Any:
    """Decode one JPEG to an RGB ``H×W×3`` uint8 array, checking it against the header size
    (from the JPEG's own frame header first, so a lying one is refused before decoding).

    An EXIF orientation tag is ignored: the pixels are used in the order they are stored, as by
    the nvJPEG path (:data:`IGNORE_ORIENTATION`)."""
    import cv2
    import numpy as np

    bad = jpeg_header_error(data, width, height)
    if bad is not None:
        raise bad
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
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
