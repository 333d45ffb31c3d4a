"""Clip transforms built from a model's :class:`InputSpec`: uint8 ``T×H×W×3`` -> float ``C×T×S×S``.

Evaluation: resize the shorter side to ``spec.resize``, centre-crop ``spec.size``, scale to [0, 1],
normalise with ``spec.mean``/``spec.std``. Training: a random resized crop (area and aspect ratio
drawn once per clip, so every frame gets the same crop) and a horizontal flip with p = 0.5.
Randomness comes from the ``generator`` passed in (the dataset derives one per sample from
(seed, epoch, index), so results do not depend on which worker ran a sample), else torch's global one.

Device augmentation (the fast loader's training path): the worker only slices the clip's frames out
of the decoded (and pre-resized) video and draws the crop box and flip with the same generator
(:meth:`ClipTransform.draw_crop`); :class:`DeviceNormalize` then crops, resizes, flips and
normalises the whole batch on the device in one ``roi_align``. Batches of such items are dicts
``{"frames": uint8 B×3×T×H×W, "box": float B×5 (top, left, height, width, flip)}``
(:func:`collate_clips` pads frames of different sizes).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from soccerkd.errors import ConfigError
from soccerkd.spec import InputSpec, resize_crop_box


class ClipTransform:
    """Callable ``frames (T×H×W×3 uint8 numpy) -> clip (3×T×size×size float32)``.

    ``uint8=True`` stops before normalising and returns the uint8 crop: 4× less to copy between
    DataLoader workers and to the device, where :class:`DeviceNormalize` finishes the job (on the
    GPU when there is one). A centre crop of frames already at ``resize`` is then a pure slice.
    """

    def __init__(self, spec: InputSpec, *, train: bool = False, scale: tuple[float, float] = (0.35, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), flip_p: float = 0.5, uint8: bool = False) -> None:
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ConfigError(f"scale must satisfy 0 < min <= max <= 1, got {scale!r}")
        if not 0 < ratio[0] <= ratio[1]:
            raise ConfigError(f"ratio must satisfy 0 < min <= max, got {ratio!r}")
        if not 0 <= flip_p <= 1:
            raise ConfigError(f"flip_p must be in [0, 1], got {flip_p!r}")
        self.spec, self.train, self.scale, self.ratio, self.flip_p = spec, train, scale, ratio, flip_p
        self.uint8 = uint8
        self._mean = torch.tensor(spec.mean, dtype=torch.float32).view(3, 1, 1, 1)
        self._std = torch.tensor(spec.std, dtype=torch.float32).view(3, 1, 1, 1)

    def __call__(self, frames: np.ndarray, generator: torch.Generator | None = None) -> torch.Tensor:
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be T×H×W×3, got shape {frames.shape}")
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)  # T×3×H×W uint8
        if not self.uint8:
            x = x.float()
        x = self._random_crop(x, generator) if self.train else self._centre_crop(x)
        if self.train and self.flip_p > 0 and torch.rand((), generator=generator).item() < self.flip_p:
            x = x.flip(-1)
        if self.uint8:
            return x.permute(1, 0, 2, 3).contiguous()  # 3×T×S×S uint8
        x = x.permute(1, 0, 2, 3).div_(255.0)  # 3×T×S×S
        return ((x - self._mean) / self._std).contiguous()

    def _resize(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        if x.shape[-2:] == (h, w):
            return x
        out = F.interpolate(x.float(), size=(h, w), mode="bilinear", align_corners=False, antialias=True).clamp_(0, 255)
        return out.round_().to(torch.uint8) if x.dtype == torch.uint8 else out

    def pre_resize(self, frames: np.ndarray) -> np.ndarray:
        """A whole decoded video resized once so its shorter side is ``spec.resize`` (uint8, same
        interpolation as the per-clip path); a cache of these makes every eval crop a slice."""
        nh, nw, _, _ = resize_crop_box(*frames.shape[1:3], resize=self.spec.resize, size=self.spec.size)
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
        return self._resize(x, nh, nw).permute(0, 2, 3, 1).contiguous().numpy()

    def _centre_crop(self, x: torch.Tensor) -> torch.Tensor:
        nh, nw, top, left = resize_crop_box(*x.shape[-2:], resize=self.spec.resize, size=self.spec.size)
        x = self._resize(x, nh, nw)
        return x[..., top:top + self.spec.size, left:left + self.spec.size]

    def draw_crop(self, h: int, w: int, generator: torch.Generator | None = None) -> tuple[int, int, int, int, bool]:
        """The random resized crop ``(top, left, height, width)`` of an ``h×w`` frame and the flip,
        drawn exactly as the worker-side training transform draws them."""
        top, left, ch, cw = self._crop_box(h, w, generator)
        flip = self.flip_p > 0 and torch.rand((), generator=generator).item() < self.flip_p
        return top, left, ch, cw, bool(flip)

    def device_item(self, frames: np.ndarray, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """A training item for :class:`DeviceNormalize`: the uint8 frames ``3×T×H×W`` as they are,
        and the crop box and flip drawn for them (``box``: top, left, height, width, flip)."""
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be T×H×W×3, got shape {frames.shape}")
        box = self.draw_crop(frames.shape[1], frames.shape[2], generator)
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).contiguous()
        return {"frames": x, "box": torch.tensor(box, dtype=torch.float32)}

    def _random_crop(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        top, left, ch, cw = self._crop_box(*x.shape[-2:], generator)
        return self._resize(x[..., top:top + ch, left:left + cw], self.spec.size, self.spec.size)

    def _crop_box(self, h: int, w: int, generator: torch.Generator | None = None) -> tuple[int, int, int, int]:
        area = h * w
        log_r = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * float(torch.empty(()).uniform_(*self.scale, generator=generator))
            aspect = math.exp(float(torch.empty(()).uniform_(*log_r, generator=generator)))
            cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
            if 0 < cw <= w and 0 < ch <= h:
                top = int(torch.randint(0, h - ch + 1, (), generator=generator))
                left = int(torch.randint(0, w - cw + 1, (), generator=generator))
                break
        else:  # fall back to the largest centred square, as torchvision does
            ch = cw = min(h, w)
            top, left = (h - ch) // 2, (w - cw) // 2
        return top, left, ch, cw


def build_transform(spec: InputSpec, *, train: bool, uint8: bool = False,
                    crop_scale: tuple[float, float] = (0.35, 1.0)) -> ClipTransform:
    """The transform a dataset applies for ``spec`` (augmenting when ``train``; ``crop_scale`` is the
    random resized crop's range of area fractions)."""
    return ClipTransform(spec, train=train, uint8=uint8, scale=tuple(crop_scale))  # type: ignore[arg-type]


def collate_clips(items: list) -> list:
    """DataLoader collate for fast-loader items: device-augmentation dicts are stacked with their
    frames edge-padded (bottom/right) to the batch's largest ``H×W`` (the boxes still point into
    the unpadded frames); anything else goes to torch's default collate."""
    from torch.utils.data import default_collate

    if not items or not isinstance(items[0][0], dict):
        return default_collate(items)
    frames = [it[0]["frames"] for it in items]
    h, w = max(f.shape[-2] for f in frames), max(f.shape[-1] for f in frames)
    batch = frames[0].new_empty((len(frames), *frames[0].shape[:2], h, w))
    for i, f in enumerate(frames):
        fh, fw = f.shape[-2:]
        batch[i, ..., :fh, :fw] = f
        # edge-replicated, so that sampling at a box's last pixel sees what it would unpadded
        batch[i, ..., fh:, :fw] = f[..., -1:, :]
        batch[i, ..., fw:] = batch[i, ..., fw - 1:fw]
    rest = default_collate([it[1:] for it in items])
    return [{"frames": batch, "box": torch.stack([it[0]["box"] for it in items])}, *rest]


class DeviceNormalize(torch.nn.Module):
    """uint8 ``B×3×T×S×S`` clips (from ``ClipTransform(uint8=True)``) -> float, scaled and normalised
    with the spec's mean/std, on whatever device the batch is on. Float batches pass through.

    A dict batch (device augmentation, see the module docstring) is first cropped to each sample's
    box and resized to ``spec.size`` by ``torchvision.ops.roi_align`` (bilinear, averaging
    ``ceil(box/size)`` samples per output pixel in each direction, which stands in for the worker
    path's antialiasing), then flipped where the box says so. Every sample of the batch in one call.
    """

    def __init__(self, spec: InputSpec) -> None:
        super().__init__()
        self.size = spec.size
        self.register_buffer("mean", torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1, 1) * 255.0)
        self.register_buffer("inv_std", 1.0 / (torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1, 1) * 255.0))

    def forward(self, x: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
        if isinstance(x, dict):
            return (self.crop(x["frames"], x["box"]) - self.mean) * self.inv_std
        if x.dtype != torch.uint8:
            return x
        return (x.float() - self.mean) * self.inv_std

    def crop(self, frames: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
        """uint8 ``B×3×T×H×W`` and boxes ``B×5`` -> float ``B×3×T×S×S`` in 0..255, crops flipped."""
        from torchvision.ops import roi_align

        b, c, t, h, w = frames.shape
        box = box.to(frames.device, torch.float32)
        top, left, ch, cw, flip = box.unbind(1)
        rois = torch.stack([torch.arange(b, device=frames.device, dtype=torch.float32),
                            left, top, left + cw, top + ch], 1)
        out = roi_align(frames.reshape(b, c * t, h, w).float(), rois, output_size=(self.size, self.size),
                        spatial_scale=1.0, sampling_ratio=-1, aligned=True)
        out = torch.where(flip.view(b, 1, 1, 1) > 0.5, out.flip(-1), out)
        return out.view(b, c, t, self.size, self.size)
