"""JPEG frames -> model-ready frames in a :class:`~stream.inference.framestore.FrameStore`, in batches.

Each frame is decoded, resized (shorter side to ``spec.resize``) and centre-cropped
(``spec.size``) exactly once, straight into its store slot. Geometry and filter are the ones
training's evaluation transform uses (:func:`soccerkd.spec.resize_crop_box`, antialiased
bilinear), so served frames match what the model was trained on; torch's uint8 antialiased
resize is also several times faster than OpenCV's ``INTER_AREA`` on these sizes.

* :class:`CpuJpegDecoder`: OpenCV ``imdecode`` and torch's resize in a few threads (both
  release the GIL), each thread taking a contiguous share of the batch; the colour conversion
  writes the crop into the slot, so no intermediate RGB frame is made.
* :class:`NvJpegDecoder`: ``torchvision.io.decode_jpeg(list, device="cuda")`` decodes the whole
  batch with nvJPEG, and the resize, crop and layout change run on the GPU per frame size.

Both give one entry per job: ``None`` when the frame is in its slot, else the
:class:`~stream.core.wire.EnvelopeError` that says why not (the caller dead-letters the message).
``start`` returns at once with a function that waits for the batch, so the caller can run
inference on earlier windows while a poll's frames are decoded.
"""

from __future__ import annotations

import concurrent.futures
import functools
from collections import defaultdict
from typing import Any, Callable, Protocol, Sequence

from soccerkd.spec import InputSpec, resize_crop_box

from stream.core.ports import FrameJob
from stream.core.wire import (CorruptFrameError, EnvelopeError, FrameSizeMismatchError, ProcessingError,
                              jpeg_header_error)
from stream.inference.framestore import FrameStore
from stream.inference.images import IGNORE_ORIENTATION


Errors = list[EnvelopeError | None]


class FrameDecoder(Protocol):
    def start(self, jobs: Sequence[FrameJob], store: FrameStore, slots: Sequence[int]) -> Callable[[], Errors]:
        """Begin decoding ``jobs[i]`` into ``store`` slot ``slots[i]``; the returned function waits
        for the batch and gives one error (or None) per job. The store must not grow meanwhile."""

    def close(self) -> None: ...


@functools.lru_cache(maxsize=64)
def _box(h: int, w: int, resize: int, size: int) -> tuple[int, int, int, int]:
    return resize_crop_box(h, w, resize=resize, size=size)


def resize_crop_chw(x: Any, *, resize: int, size: int) -> Any:
    """``…×3×H×W`` tensor -> shorter side resized to ``resize`` (antialiased bilinear, as training's
    evaluation transform), then the centre ``size×size`` crop (a view). uint8 stays uint8 (torch's
    fast CPU path); on CUDA, where the antialiased kernel takes float, pass float."""
    import torch.nn.functional as F

    h, w = int(x.shape[-2]), int(x.shape[-1])
    nh, nw, top, left = _box(h, w, resize, size)
    if (nh, nw) != (h, w):
        x = F.interpolate(x if x.dim() == 4 else x[None], size=(nh, nw), mode="bilinear", antialias=True,
                          align_corners=False)
    return x[..., top:top + size, left:left + size]


def resize_crop(rgb: Any, *, resize: int, size: int) -> Any:
    """The same for one ``H×W×3`` uint8 numpy image -> ``size×size×3`` uint8."""
    import torch

    x = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    return resize_crop_chw(x, resize=resize, size=size)[0].permute(1, 2, 0).contiguous().numpy()


def draft_scale(width: int, height: int, resize: int) -> int:
    """The JPEG draft scale (1, 2, 4 or 8) for a frame resized to ``resize`` on its shorter side.

    libjpeg can decode at 1/2, 1/4 or 1/8 size by scaling its inverse DCT, which is 2-3x faster
    for large frames. The reduced frame is used only while its shorter side stays at least twice
    ``resize``, so the antialiased resize still does the low-pass filtering: on 1280x720 frames
    resized to 128, decoding at 1/2 changed the model input by 0.23 grey levels on average
    (p99 2), less than JPEG's own quantisation noise.
    """
    scale, short = 1, min(width, height)
    while scale < 8 and short / (2 * scale) >= 2 * resize:
        scale *= 2
    return scale


class CpuJpegDecoder:
    """OpenCV decode + resize + crop into a CPU store, in ``threads`` threads."""

    def __init__(self, spec: InputSpec, *, threads: int = 1, draft: bool = True) -> None:
        import cv2

        self._rgb_flag = getattr(cv2, "IMREAD_COLOR_RGB", None)   # OpenCV >= 4.10 decodes straight to RGB
        flags = {1: self._rgb_flag or cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2,
                 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}   # the reduced ones give BGR
        # EXIF orientation ignored, as by the nvJPEG path (stream.inference.images.IGNORE_ORIENTATION)
        self._flags = {k: v | cv2.IMREAD_IGNORE_ORIENTATION for k, v in flags.items()}
        self.draft = draft
        if threads < 1:
            raise ValueError(f"decode threads must be >= 1, got {threads!r}")
        self.resize, self.size = spec.resize, spec.size
        self.threads = threads
        # Off the main thread even with one thread, so the service runs inference meanwhile.
        self._pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="decode")

    def start(self, jobs: Sequence[FrameJob], store: FrameStore, slots: Sequence[int]) -> Callable[[], Errors]:
        frames, n = store.tensor, len(jobs)
        if n == 0:
            return list
        step = -(-n // self.threads)
        parts = [self._pool.submit(self._run, jobs, frames, slots, lo, min(n, lo + step)) for lo in range(0, n, step)]
        return lambda: [err for part in parts for err in part.result()]

    def _run(self, jobs: Sequence[FrameJob], frames: Any, slots: Sequence[int], lo: int, hi: int) -> Errors:
        import cv2
        import numpy as np
        import torch

        resize, size, rgb = self.resize, self.size, self._rgb_flag
        out: Errors = []
        for i in range(lo, hi):
            job = jobs[i]
            bad = jpeg_header_error(job.data, job.width, job.height)
            if bad is not None:
                out.append(bad)
                continue
            try:
                scale = draft_scale(job.width, job.height, resize) if self.draft else 1
                img = cv2.imdecode(np.frombuffer(job.data, dtype=np.uint8), self._flags[scale])
                if img is None:
                    out.append(CorruptFrameError(f"{len(job.data)}-byte frame does not decode as JPEG"))
                    continue
                is_rgb = scale == 1 and rgb is not None
                h, w = img.shape[:2]
                if h != -(-job.height // scale) or w != -(-job.width // scale):
                    out.append(FrameSizeMismatchError(f"frame decodes to {w * scale}x{h * scale}, header says "
                                                      f"{job.width}x{job.height}"))
                    continue
                crop = resize_crop_chw(torch.from_numpy(img).permute(2, 0, 1), resize=resize, size=size)
                crop = crop.reshape(3, size, size)
                frames[slots[i]].copy_(crop if is_rgb else crop.flip(0))
            except MemoryError:   # the process is broken, not the message: fail stop
                raise
            except Exception as exc:   # cv2.error, a torch error...: this message only
                out.append(ProcessingError(f"decoding a {len(job.data)}-byte frame failed: "
                                           f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"))
                continue
            out.append(None)
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=False)


class NvJpegDecoder:
    """nvJPEG batch decode + GPU resize/crop into a CUDA store.

    The resize is the same antialiased bilinear as the CPU path (in float here), and nvJPEG's
    IDCT differs slightly from libjpeg's, so the two give close, not bit-equal, frames; the gpu
    tests bound the difference.
    """

    def __init__(self, spec: InputSpec, *, device: Any) -> None:
        import torch
        from torchvision.io import decode_jpeg  # noqa: F401  (fail at start, not at the first frame)

        self.resize, self.size = spec.resize, spec.size
        self.device = torch.device(device)

    def start(self, jobs: Sequence[FrameJob], store: FrameStore, slots: Sequence[int]) -> Callable[[], Errors]:
        # nvJPEG and the resize are queued on the GPU stream; only the host-side checks run here.
        errors = self._decode_into(jobs, store, slots)
        return lambda: errors

    def _decode_into(self, jobs: Sequence[FrameJob], store: FrameStore, slots: Sequence[int]) -> Errors:
        import torch

        errors: Errors = [None] * len(jobs)
        todo = []
        for i, job in enumerate(jobs):
            # nvJPEG is not asked to parse what is not a JPEG of the right size
            bad = jpeg_header_error(job.data, job.width, job.height)
            if bad is not None:
                errors[i] = bad
            else:
                todo.append(i)
        if not todo:
            return errors
        # One host copy of every frame's bytes; the decoder takes 1-D uint8 views of it.
        blob = torch.frombuffer(bytearray(b"".join(jobs[i].data for i in todo)), dtype=torch.uint8)
        views, pos = [], 0
        for i in todo:
            n = len(jobs[i].data)
            views.append(blob[pos:pos + n])
            pos += n
        images = self._decode(views, todo, errors)
        by_size: dict[tuple[int, int], list[tuple[int, Any]]] = defaultdict(list)
        for i, img in zip(todo, images):
            if img is None:
                continue
            h, w = int(img.shape[1]), int(img.shape[2])
            if (h, w) != (jobs[i].height, jobs[i].width):
                errors[i] = FrameSizeMismatchError(f"frame decodes to {w}x{h}, header says {jobs[i].width}x{jobs[i].height}")
                continue
            by_size[(h, w)].append((i, img))
        for items in by_size.values():
            index = torch.tensor([slots[i] for i, _ in items], device=self.device)
            store.tensor[index] = self._resize_crop(torch.stack([img for _, img in items]))
        return errors

    def _decode(self, views: list[Any], todo: list[int], errors: Errors) -> list[Any]:
        from torchvision.io import ImageReadMode, decode_jpeg

        try:
            return list(decode_jpeg(views, mode=ImageReadMode.RGB, device=self.device,
                                    apply_exif_orientation=not IGNORE_ORIENTATION))
        except RuntimeError:
            pass   # a corrupt frame fails the whole batch: decode one by one to find it
        out = []
        for i, view in zip(todo, views):
            try:
                out.append(decode_jpeg(view, mode=ImageReadMode.RGB, device=self.device,
                                       apply_exif_orientation=not IGNORE_ORIENTATION))
            except RuntimeError as exc:
                errors[i] = CorruptFrameError(f"{view.numel()}-byte frame does not decode as JPEG: {exc}")
                out.append(None)
        return out

    def _resize_crop(self, x: Any) -> Any:
        """``K×3×H×W`` uint8 on the GPU -> ``K×3×size×size`` uint8."""
        import torch

        y = resize_crop_chw(x.float(), resize=self.resize, size=self.size)
        return y.round_().clamp_(0, 255).to(torch.uint8)

    def close(self) -> None:
        pass
