"""The two small contracts every part shares: what a clip is, and what a model expects as input.

``ClipSpec`` is pure frame-index arithmetic input (used by data sampling and by the streaming
windows); ``InputSpec`` is what a trained model carries in its checkpoint so that anyone can
feed it correctly (clip, spatial size, normalisation, class names).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from soccerkd.errors import ConfigError

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SOCCERDB1_CLASSES = ("dribble", "kick", "run", "walk")


def resize_crop_box(height: int, width: int, *, resize: int, size: int) -> tuple[int, int, int, int]:
    """``(new_height, new_width, top, left)``: resize a ``height×width`` frame so its shorter side is
    ``resize`` (neither side below ``size``), then crop ``size×size`` at ``(top, left)``.

    The one rule for training transforms and serving, so both see the same centre crop. Example:
    96×128 with resize 72, size 64 -> resize to 72×96, crop at (4, 16) -> ``(72, 96, 4, 16)``.
    """
    k = resize / min(height, width)
    nh, nw = max(size, round(height * k)), max(size, round(width * k))
    return nh, nw, (nh - size) // 2, (nw - size) // 2


@dataclass(frozen=True)
class ClipSpec:
    """A clip is ``num_frames`` frames taken every ``frame_stride`` source frames.

    When ``target_fps`` is set, the stride is derived from the source frame rate instead:
    ``stride = max(1, round(source_fps / target_fps))`` (see :meth:`stride_for`).

    Example: ``ClipSpec(num_frames=8, frame_stride=2)`` on a 25 fps video takes frames
    0, 2, 4, ..., 14 for the first clip, which spans 15 source frames (0.6 s).
    """

    num_frames: int = 8
    frame_stride: int = 1
    target_fps: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.num_frames, bool) or not isinstance(self.num_frames, int) or self.num_frames < 1:
            raise ConfigError(f"num_frames must be an integer >= 1, got {self.num_frames!r}")
        if isinstance(self.frame_stride, bool) or not isinstance(self.frame_stride, int) or self.frame_stride < 1:
            raise ConfigError(f"frame_stride must be an integer >= 1, got {self.frame_stride!r}")
        if self.target_fps is not None and not self.target_fps > 0:
            raise ConfigError(f"target_fps must be > 0 or null, got {self.target_fps!r}")

    def stride_for(self, source_fps: float | None) -> int:
        """Source-frame stride for a video at ``source_fps`` (falls back to ``frame_stride``)."""
        if self.target_fps is None or not source_fps:
            return self.frame_stride
        return max(1, round(source_fps / self.target_fps))

    def span(self, source_fps: float | None = None) -> int:
        """Number of source frames one clip covers, first to last inclusive."""
        return (self.num_frames - 1) * self.stride_for(source_fps) + 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ClipSpec":
        return cls(**dict(data))


@dataclass(frozen=True)
class InputSpec:
    """Everything needed to feed a model: clip layout, spatial size, normalisation, labels.

    Frames are resized so the shorter side is ``resize``, centre-cropped to ``size``×``size``,
    scaled to [0, 1] and normalised with ``mean``/``std`` (RGB). Models take ``B×C×T×H×W``.
    """

    clip: ClipSpec = field(default_factory=ClipSpec)
    size: int = 112
    resize: int = 128
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD
    class_names: tuple[str, ...] = SOCCERDB1_CLASSES

    def __post_init__(self) -> None:
        if self.size < 1 or self.resize < self.size:
            raise ConfigError(f"need 1 <= size <= resize, got size={self.size!r}, resize={self.resize!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s <= 0 for s in self.std):
            raise ConfigError(f"mean/std must be 3 values with std > 0, got mean={self.mean!r}, std={self.std!r}")
        if len(self.class_names) < 2 or len(set(self.class_names)) != len(self.class_names):
            raise ConfigError(f"class_names must be >= 2 distinct names, got {self.class_names!r}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"], d["class_names"] = list(self.mean), list(self.std), list(self.class_names)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "InputSpec":
        d = dict(data)
        d["clip"] = ClipSpec.from_dict(d.get("clip", {}))
        for key in ("mean", "std", "class_names"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)
