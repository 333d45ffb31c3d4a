"""What one frames message may ask of the service, checked from its envelope before anything is
decoded. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from stream.core.wire import EmptyValueError, FrameBatch, KeyMismatchError, LimitExceededError, decode_frame_batch


@dataclass(frozen=True)
class LimitsConfig:
    """What one frames message may ask of the service, checked from its envelope before anything
    is decoded (each frame's own JPEG header must then agree with the envelope)."""

    max_pixels: int = 4096 * 2304           # per frame: 4K UHD and a little more
    max_aspect_ratio: float = 8.0           # longer side / shorter side
    max_decoded_bytes: int = 512 * 1024 * 1024   # RGB bytes of all the frames of one message
    # capture times further than this from the service's wall clock are counted (clock_skew); a
    # file sent with --pacing fast runs ahead of the wall clock by up to its length
    max_clock_skew_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.max_pixels < 1 or self.max_aspect_ratio < 1 or self.max_decoded_bytes < 1 or self.max_clock_skew_s <= 0:
            from soccerkd.errors import ConfigError

            raise ConfigError(f"limits must be positive (max_aspect_ratio >= 1), got {self}")

    def check(self, batch: FrameBatch) -> None:
        w, h = batch.width, batch.height
        if w * h > self.max_pixels:
            raise LimitExceededError(f"{w}x{h} frames have {w * h} pixels, over limits.max_pixels={self.max_pixels}")
        if max(w, h) > self.max_aspect_ratio * min(w, h):
            raise LimitExceededError(f"{w}x{h} frames have an aspect ratio over limits.max_aspect_ratio="
                                     f"{self.max_aspect_ratio:g}")
        decoded = w * h * 3 * len(batch.frames)
        if decoded > self.max_decoded_bytes:
            raise LimitExceededError(f"{len(batch.frames)} frames of {w}x{h} decode to {decoded} bytes, over "
                                     f"limits.max_decoded_bytes={self.max_decoded_bytes}")


def parse_message(value: bytes | None, key: bytes | None, limits: LimitsConfig) -> FrameBatch:
    """The frame batch of one frames record, checked before any frame is decoded: a value (not a
    tombstone), a valid envelope, the record key equal to the camera id (``key`` None: not
    checked), and within ``limits``. Raises the :class:`EnvelopeError` that rejects it."""
    if value is None:
        raise EmptyValueError("the record has no value (a tombstone)")
    batch = decode_frame_batch(value)
    if key is not None and key != batch.key:
        raise KeyMismatchError(f"record key {key[:80]!r} is not the camera id {batch.camera_id!r}; "
                               f"producers must key frame batches by camera id")
    limits.check(batch)
    return batch
