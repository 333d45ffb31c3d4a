"""The torch :class:`~stream.core.ports.Predictor`: batched decode, frames stored once, AMP on CUDA.

:class:`TorchPredictor` keeps payloads as slots of a
:class:`~stream.inference.framestore.FrameStore`: with ``decode="gpu"`` the store is on the GPU and
JPEGs are decoded by nvJPEG and never exist on the host as pixels; with CPU decode it is in host
memory. A batch is one gather from the store, whatever the device.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Sequence

from soccerkd.spec import InputSpec

from stream.core.ports import FrameJob
from stream.core.wire import EnvelopeError, LimitExceededError
from stream.errors import StreamError


if TYPE_CHECKING:
    import numpy as np

    from stream.core.windowing import ClipWindow

DecodeMode = Literal["auto", "cpu", "gpu"]


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; a CUDA request without CUDA is an error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise StreamError(f"device {device!r} requested but CUDA is not available")
    return device


class TorchPredictor:
    """Runs an ``nn.Module`` taking ``B×C×T×H×W`` normalised float clips.

    Frames live as ``3×H×W`` uint8 slots of a :class:`FrameStore` (4× smaller than float): on
    the model's device with GPU decode, in host memory with CPU decode; a batch is gathered in one
    indexing operation and normalised on the model's device. ``decode``: ``gpu`` decodes with nvJPEG into a CUDA store, ``cpu`` with OpenCV in
    ``decode_threads`` threads (at a reduced JPEG draft size where that is lossless enough for the
    resize, unless ``jpeg_draft`` is off: :func:`stream.inference.preprocess.draft_scale`), ``auto`` picks
    ``gpu`` on CUDA. On CUDA the model runs under
    autocast (``amp``: ``bf16`` when supported, else ``fp16``; or ``none``) in the channels-last
    layout of its family (:func:`soccerkd.models.memory_format_for`); on the CPU in float32.
    """

    def __init__(self, model: Any, spec: InputSpec, *, model_name: str, checkpoint_sha256: str = "",
                 device: str = "auto", amp: Literal["auto", "fp16", "bf16", "none"] = "auto",
                 channels_last: bool = True, cpu_threads: int | None = None, decode: DecodeMode = "auto",
                 decode_threads: int = 1, jpeg_draft: bool = True, frame_store_mb: float | None = None) -> None:
        import torch

        from soccerkd.models import memory_format_for

        from stream.inference.framestore import FrameStore
        from stream.inference.preprocess import CpuJpegDecoder, NvJpegDecoder

        if cpu_threads is not None:
            torch.set_num_threads(cpu_threads)  # several services or workers per host oversubscribe otherwise
        self.device = torch.device(resolve_device(device))
        self.input_spec = spec
        self.model_name = model_name
        self.checkpoint_sha256 = checkpoint_sha256
        self.class_names = tuple(spec.class_names)
        on_gpu = self.device.type == "cuda"
        if amp == "auto":
            amp = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if on_gpu else "none"
        if amp != "none" and not on_gpu:
            amp = "none"  # CPU autocast is slower than fp32 for these convs; keep exact numbers
        self.amp = amp
        if decode == "auto":
            decode = "gpu" if on_gpu else "cpu"
        if decode not in ("cpu", "gpu"):
            raise StreamError(f"model.decode must be auto, cpu or gpu, got {decode!r}")
        if decode == "gpu" and not on_gpu:
            raise StreamError(f"model.decode 'gpu' needs a CUDA device, but the model runs on {self.device}")
        self.decode = decode
        self.memory_format = memory_format_for(model)
        self.channels_last = channels_last and on_gpu
        self.model = model.to(self.device).eval()
        if self.channels_last:
            self.model = self.model.to(memory_format=self.memory_format)
        # CPU decode keeps frames in host memory even for a CUDA model: decode threads then write
        # no device copy per frame, and a batch crosses to the GPU once, as uint8 (4x less than float).
        self.store = FrameStore(spec.size, device=self.device if decode == "gpu" else "cpu",
                                max_bytes=None if frame_store_mb is None else int(frame_store_mb * 2**20))
        self.decoder = (NvJpegDecoder(spec, device=self.device) if decode == "gpu"
                        else CpuJpegDecoder(spec, threads=decode_threads, draft=jpeg_draft))
        # (x - 255·mean) / (255·std) as x·scale + shift, in place
        shape = (1, 3, 1, 1, 1)
        std = torch.tensor(spec.std, device=self.device).view(shape) * 255.0
        self._scale = 1.0 / std
        self._shift = -torch.tensor(spec.mean, device=self.device).view(shape) * 255.0 / std
        self._buffer: Any = None

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str = "auto",
                        amp: Literal["auto", "fp16", "bf16", "none"] = "auto",
                        cpu_threads: int | None = None, decode: DecodeMode = "auto",
                        decode_threads: int = 1, jpeg_draft: bool = True,
                        frame_store_mb: float | None = None) -> "TorchPredictor":
        """Load a ``soccerkd train`` checkpoint (via :func:`soccerkd.train.checkpoint.load_model`);
        ``path`` may also be a shipped name such as ``demo`` (:func:`stream.inference.artifacts.resolve_checkpoint`)."""
        from soccerkd.train.checkpoint import load_model

        from stream.inference.artifacts import resolve_checkpoint

        model, spec, meta = load_model(resolve_checkpoint(path), device="cpu")
        return cls(model, spec, model_name=meta["model_name"], checkpoint_sha256=meta["checkpoint_sha256"],
                   device=device, amp=amp, cpu_threads=cpu_threads, decode=decode, decode_threads=decode_threads,
                   jpeg_draft=jpeg_draft, frame_store_mb=frame_store_mb)

    def adopt_model(self, other: "TorchPredictor") -> None:
        """Serve ``other``'s model from the next batch on, keeping this predictor's frame store and
        decoder (the frames that windows already hold stay valid). The caller checks that the
        input specs match in clip, size and resize (:func:`stream.inference.shadow.check_same_input`)
        and that the classes are the same, in the same order; normalisation may differ."""
        if other.device != self.device or other.input_spec.class_names != self.input_spec.class_names:
            raise ValueError(f"cannot adopt a model on {other.device} with classes {other.input_spec.class_names} "
                             f"into a predictor on {self.device} with {self.input_spec.class_names}")
        for name in ("model", "memory_format", "channels_last", "amp", "input_spec", "model_name",
                     "checkpoint_sha256", "_scale", "_shift"):
            setattr(self, name, getattr(other, name))
        self._buffer = None   # its layout follows the model's memory format

    # -- frames ---------------------------------------------------------------------------------
    def start_prepare(self, jobs: Sequence[FrameJob]) -> Callable[[], list[Any]]:
        fit = min(len(jobs), self.store.available)   # the rest: over the store's budget
        full = [LimitExceededError(f"frame store full: {len(jobs) - fit} of {len(jobs)} frames of this poll over "
                                   f"model.frame_store_mb ({self.store.max_capacity} frames)")] * (len(jobs) - fit)
        slots = self.store.alloc(fit)
        wait = self.decoder.start(jobs[:fit], self.store, slots)

        def finish() -> list[Any]:
            errors = wait()
            bad = [s for s, e in zip(slots, errors) if e is not None]
            if bad:
                self.store.release(bad)
            return [s if e is None else e for s, e in zip(slots, errors)] + full

        return finish

    def prepare(self, jobs: Sequence[FrameJob]) -> list[Any]:
        return self.start_prepare(jobs)()

    def retain(self, payloads: Sequence[Any]) -> None:
        self.store.retain(payloads)

    def release(self, payloads: Sequence[Any]) -> None:
        self.store.release(payloads)

    def preprocess_frames(self, rgbs: Sequence["np.ndarray"]) -> list[int]:
        """Store already decoded RGB frames (benchmarks and tests that start from pixels)."""
        from stream.inference.images import encode_image

        out = self.prepare([FrameJob(encode_image(f, quality=95), f.shape[1], f.shape[0]) for f in rgbs])
        for p in out:
            if isinstance(p, EnvelopeError):
                raise p
        return out

    # -- inference ------------------------------------------------------------------------------
    def batch_tensor(self, windows: Sequence["ClipWindow[Any]"]) -> Any:
        """The normalised ``B×C×T×H×W`` float input on the device: one gather from the store."""
        import torch

        index = torch.tensor([w.frames for w in windows], dtype=torch.long)
        if self.store.device.type == "cuda":
            index = index.pin_memory().to(self.store.device, non_blocking=True)
        clips = self.store.gather(index)
        if self.store.device.type != self.device.type:   # a host store (CPU decode) feeding a CUDA model
            clips = clips.pin_memory().to(self.device, non_blocking=True)
        clips = clips.permute(0, 2, 1, 3, 4)   # B,T,C,H,W -> B,C,T,H,W (a view)
        # Into a reused float buffer: a fresh 40 MB tensor per batch costs more in page faults
        # than the conversion itself, and the copy also lays the input out as the model wants.
        x = self._input_buffer(tuple(clips.shape))
        x.copy_(clips)
        return x.mul_(self._scale).add_(self._shift)

    def _input_buffer(self, shape: tuple[int, ...]) -> Any:
        """A float ``B×C×T×H×W`` tensor: the first rows of one kept for the largest batch so far.
        Channels-last (``B,T,H,W,C`` in memory) on the GPU: that is ``channels_last_3d`` for 3D
        convolutions and ``channels_last`` for the TSM family's ``(B·T)×C×H×W`` frames."""
        import torch

        buf = self._buffer
        if buf is None or buf.shape[0] < shape[0] or tuple(buf.shape[1:]) != shape[1:]:
            b, c, t, h, w = shape
            if self.channels_last:
                buf = torch.empty((b, t, h, w, c), dtype=torch.float32, device=self.device).permute(0, 4, 1, 2, 3)
            else:
                buf = torch.empty(shape, dtype=torch.float32, device=self.device)
            self._buffer = buf
        return buf[:shape[0]]

    def predict(self, windows: Sequence["ClipWindow[Any]"]) -> "np.ndarray":
        return self.predict_tensor(self.batch_tensor(windows))

    def predict_tensor(self, x: Any) -> "np.ndarray":
        """Probabilities for an already-built input batch (used by the bare-model benchmark)."""
        import torch

        with torch.inference_mode():
            if self.amp != "none":
                dtype = torch.bfloat16 if self.amp == "bf16" else torch.float16
                with torch.autocast(device_type="cuda", dtype=dtype):
                    logits = self.model(x)
            else:
                logits = self.model(x)
            return torch.softmax(logits.float(), dim=1).cpu().numpy()

    def close(self) -> None:
        self.decoder.close()
