"""What one frames message may ask of the service, checked from its envelope before anything is
decoded. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from stream.core.wire import (CorruptFrameError, EmptyValueError, FrameBatch, KeyMismatchError, LimitExceededError,
                              decode_frame_batch, jpeg_scans)


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
    # 256 frames of 16x16 are 4 KB of JPEG but a store slot, a window and an inference each: the
    # ingester sends 8 a message
    max_frames_per_message: int = 128
    max_jpeg_scans: int = 32                 # per progressive frame (libjpeg's own script has 10)
    # decoding work of one message, in pixels x scans (a progressive scan walks every pixel's
    # coefficients again); 1e9 is about 2.5 s of one core of this project's CI machine
    max_decode_pixels: int = 1_000_000_000
    # windows one message may complete (its frames / windows.window_stride): each is an inference
    max_windows_per_message: int = 64
    # camera states (open epochs) per partition: a flood of made-up camera ids is refused here;
    # a partition's commit metadata holds about 150 resume points anyway
    max_cameras_per_partition: int = 1000

    def __post_init__(self) -> None:
        numbers = (self.max_pixels, self.max_decoded_bytes, self.max_frames_per_message, self.max_jpeg_scans,
                   self.max_decode_pixels, self.max_windows_per_message, self.max_cameras_per_partition)
        if min(numbers) < 1 or self.max_aspect_ratio < 1 or self.max_clock_skew_s <= 0:
            from soccerkd.errors import ConfigError

            raise ConfigError(f"limits must be positive (max_aspect_ratio >= 1), got {self}")

    def check(self, batch: FrameBatch) -> None:
        w, h = batch.width, batch.height
        if w * h > self.max_pixels:
            raise LimitExceededError(f"{w}x{h} frames have {w * h} pixels, over limits.max_pixels={self.max_pixels}")
        if max(w, h) > self.max_aspect_ratio * min(w, h):
            raise LimitExceededError(f"{w}x{h} frames have an aspect ratio over limits.max_aspect_ratio="
                                     f"{self.max_aspect_ratio:g}")
        n = len(batch.frames)
        if n > self.max_frames_per_message:
            raise LimitExceededError(f"{n} frames in one message, over limits.max_frames_per_message="
                                     f"{self.max_frames_per_message}")
        decoded = w * h * 3 * n
        if decoded > self.max_decoded_bytes:
            raise LimitExceededError(f"{n} frames of {w}x{h} decode to {decoded} bytes, over "
                                     f"limits.max_decoded_bytes={self.max_decoded_bytes}")
        work = 0
        for i, frame in enumerate(batch.frames):
            scans = jpeg_scans(frame, limit=self.max_jpeg_scans)
            if scans > self.max_jpeg_scans:
                raise CorruptFrameError(f"frame {i} is a progressive JPEG of more than {self.max_jpeg_scans} scans "
                                        f"(limits.max_jpeg_scans): a decoder would walk it once per scan")
            work += w * h * scans
        if work > self.max_decode_pixels:
            raise LimitExceededError(f"decoding the {n} frames of {w}x{h} would cost {work} pixel-scans, over "
                                     f"limits.max_decode_pixels={self.max_decode_pixels}")


def parse_message(value: bytes | None, key: bytes | None, limits: LimitsConfig, *, window_stride: int = 1) -> FrameBatch:
    """The frame batch of one frames record, checked before any frame is decoded: a value (not a
    tombstone), a valid envelope, the record key equal to the camera id (``key`` None: not
    checked), and within ``limits`` (windows counted at ``window_stride``). Raises the
    :class:`EnvelopeError` that rejects it."""
    if value is None:
        raise EmptyValueError("the record has no value (a tombstone)")
    batch = decode_frame_batch(value)
    if key is not None and key != batch.key:
        raise KeyMismatchError(f"record key {key[:80]!r} is not the camera id {batch.camera_id!r}; "
                               f"producers must key frame batches by camera id")
    limits.check(batch)
    windows = -(-len(batch.frames) // window_stride)
    if windows > limits.max_windows_per_message:
        raise LimitExceededError(f"{len(batch.frames)} frames at windows.window_stride={window_stride} make {windows} "
                                 f"windows, over limits.max_windows_per_message={limits.max_windows_per_message}")
    return batch
