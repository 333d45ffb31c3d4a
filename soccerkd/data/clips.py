"""Pure clip-sampling arithmetic: which source frame indices make up a clip.

No decoding, no torch: the datasets and the streaming windows both use these functions.

The rule, with 0-based frame indices and ``n`` frames in the video:

* a clip starting at ``start`` takes ``start + i * stride`` for ``i`` in ``range(num_frames)``,
  where ``stride = spec.stride_for(fps)``;
* an index past the last frame is **clamped to the last frame** ``n - 1`` (the last frame is
  repeated), so a video shorter than a clip still yields a full clip;
* valid starts are ``0 .. max(0, n - span)`` inclusive, ``span = (num_frames - 1) * stride + 1``.

Worked examples (``ClipSpec(num_frames=4, frame_stride=2)``, span 7):

* ``n = 10``: starts 0..3; ``clip_indices(3, 10, spec) == (3, 5, 7, 9)``.
* ``n = 5`` (shorter than the span): the only start is 0 and
  ``clip_indices(0, 5, spec) == (0, 2, 4, 4)``: index 6 is clamped to 4.
* ``uniform_clip_starts(10, spec, 2) == (0, 3)``: first and last valid start.
"""

from __future__ import annotations

import random
from typing import Sequence

from soccerkd.errors import ConfigError, DataError
from soccerkd.spec import ClipSpec


def _check_length(num_video_frames: int) -> None:
    if isinstance(num_video_frames, bool) or not isinstance(num_video_frames, int) or num_video_frames < 1:
        raise DataError(f"a video must have at least 1 frame, got num_video_frames={num_video_frames!r}")


def max_start(num_video_frames: int, spec: ClipSpec, fps: float | None = None) -> int:
    """Largest start index whose clip fits entirely in the video (0 when the video is too short)."""
    _check_length(num_video_frames)
    return max(0, num_video_frames - spec.span(fps))


def clip_indices(start: int, num_video_frames: int, spec: ClipSpec, fps: float | None = None) -> tuple[int, ...]:
    """Frame indices of the clip that starts at ``start``; indices past the end clamp to ``n - 1``.

    >>> clip_indices(0, 5, ClipSpec(num_frames=4, frame_stride=2))
    (0, 2, 4, 4)
    >>> clip_indices(0, 3, ClipSpec(num_frames=1))
    (0,)
    """
    _check_length(num_video_frames)
    if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start < num_video_frames:
        raise DataError(f"clip start {start!r} is outside the video's frames 0..{num_video_frames - 1}")
    stride = spec.stride_for(fps)
    last = num_video_frames - 1
    return tuple(min(start + i * stride, last) for i in range(spec.num_frames))


def uniform_clip_starts(num_video_frames: int, spec: ClipSpec, num_clips: int,
                        fps: float | None = None) -> tuple[int, ...]:
    """``num_clips`` evenly spaced starts covering the video, for evaluation.

    The first clip starts at 0 and the last at :func:`max_start`, the rest evenly in between
    (rounded down); a single clip is centred. Starts repeat when the video has fewer valid starts
    than ``num_clips`` (so every video yields exactly ``num_clips`` items).

    Exactly divisible example: ``n = 32``, ``ClipSpec(num_frames=8)``, ``num_clips=4`` gives
    ``(0, 8, 16, 24)``: four back-to-back clips that tile the video.

    >>> uniform_clip_starts(32, ClipSpec(num_frames=8), 4)
    (0, 8, 16, 24)
    >>> uniform_clip_starts(20, ClipSpec(num_frames=8), 1)
    (6,)
    >>> uniform_clip_starts(5, ClipSpec(num_frames=8), 3)
    (0, 0, 0)
    """
    if isinstance(num_clips, bool) or not isinstance(num_clips, int) or num_clips < 1:
        raise ConfigError(f"num_clips must be an integer >= 1, got {num_clips!r}")
    top = max_start(num_video_frames, spec, fps)
    if num_clips == 1:
        return (top // 2,)
    return tuple((k * top) // (num_clips - 1) for k in range(num_clips))


def random_clip_start(num_video_frames: int, spec: ClipSpec, rng: random.Random,
                      fps: float | None = None) -> int:
    """A start drawn uniformly from ``0 .. max_start`` inclusive, for training."""
    return rng.randint(0, max_start(num_video_frames, spec, fps))


def uniform_clips(num_video_frames: int, spec: ClipSpec, num_clips: int,
                  fps: float | None = None) -> tuple[tuple[int, ...], ...]:
    """Frame indices of each of the ``num_clips`` uniform clips."""
    return tuple(clip_indices(s, num_video_frames, spec, fps)
                 for s in uniform_clip_starts(num_video_frames, spec, num_clips, fps))


def segment_indices(num_video_frames: int, num_frames: int, offsets: float | Sequence[float]) -> tuple[int, ...]:
    """TSN-style sampling: the video is cut into ``num_frames`` equal segments and one frame is taken
    from each, at ``offset`` (0 <= offset < 1) of the way through its segment; so every clip spans
    the whole video whatever its length. ``offsets`` is one number for all segments (evaluation:
    clip k of K uses ``(k + 0.5) / K``) or one per segment (training: random).

    >>> segment_indices(25, 8, 0.5)
    (1, 4, 7, 10, 14, 17, 20, 23)
    >>> segment_indices(25, 8, [0.0] * 8)
    (0, 3, 6, 9, 12, 15, 18, 21)
    >>> segment_indices(4, 8, 0.5)
    (0, 0, 1, 1, 2, 2, 3, 3)
    """
    _check_length(num_video_frames)
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise ConfigError(f"num_frames must be an integer >= 1, got {num_frames!r}")
    offs = [float(offsets)] * num_frames if isinstance(offsets, (int, float)) else [float(o) for o in offsets]
    if len(offs) != num_frames or any(not 0.0 <= o < 1.0 for o in offs):
        raise ConfigError(f"offsets must be {num_frames} numbers in [0, 1), got {offsets!r}")
    seg = num_video_frames / num_frames
    return tuple(min(int(seg * i + seg * o), num_video_frames - 1) for i, o in enumerate(offs))


def eval_segment_offsets(num_clips: int) -> tuple[float, ...]:
    """Offsets of the ``num_clips`` evaluation clips under segment sampling: ``(k + 0.5) / K``.

    >>> eval_segment_offsets(2)
    (0.25, 0.75)
    """
    if isinstance(num_clips, bool) or not isinstance(num_clips, int) or num_clips < 1:
        raise ConfigError(f"num_clips must be an integer >= 1, got {num_clips!r}")
    return tuple((k + 0.5) / num_clips for k in range(num_clips))


def sorted_unique(indices: Sequence[int]) -> list[int]:
    """The distinct indices in increasing order (what a decoder must actually read)."""
    return sorted(set(indices))
