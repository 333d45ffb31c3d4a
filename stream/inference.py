"""Predictor port and its torch implementation (batching across cameras, AMP on CUDA).

A :class:`Predictor` does two things: ``preprocess_frame`` turns one decoded RGB frame into the
payload the windows carry (called once per frame, so a frame shared by several overlapping
windows is resized and cropped once), and ``predict`` turns a batch of windows, from any
cameras, into class probabilities.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, Sequence

from soccerkd.spec import InputSpec, resize_crop_box

from stream.errors import StreamError

if TYPE_CHECKING:
    import numpy as np

    from stream.windowing import ClipWindow


class Predictor(Protocol):
    """What the pipeline needs from a model."""

    model_name: str
    checkpoint_sha256: str
    input_spec: InputSpec

    def preprocess_frame(self, rgb: "np.ndarray") -> Any:
        """One decoded ``H×W×3`` uint8 RGB frame -> the payload stored in windows."""

    def predict(self, windows: Sequence["ClipWindow[Any]"]) -> "np.ndarray":
        """``B`` windows -> ``B×num_classes`` float probabilities (rows sum to 1)."""


def resize_crop(rgb: "np.ndarray", *, resize: int, size: int) -> "np.ndarray":
    """Resize so the shorter side is ``resize``, then centre-crop ``size×size`` (uint8, HWC)."""
    import cv2

    h, w = rgb.shape[:2]
    nh, nw, top, left = resize_crop_box(h, w, resize=resize, size=size)
    if (nh, nw) != (h, w):
        interp = cv2.INTER_AREA if resize < min(h, w) else cv2.INTER_LINEAR
        rgb = cv2.resize(rgb, (nw, nh), interpolation=interp)
    return rgb[top:top + size, left:left + size]


class TorchPredictor:
    """Runs an ``nn.Module`` taking ``B×C×T×H×W`` normalised float clips.

    Frames are stored as ``C×H×W`` uint8 tensors after resize + crop (4× smaller than float);
    normalisation happens on the device for the whole batch. On CUDA the model runs under
    autocast (``amp``: ``bf16`` when supported, else ``fp16``; or ``none``) with
    ``channels_last_3d`` memory format; on the CPU it runs in float32.
    """

    def __init__(self, model: Any, spec: InputSpec, *, model_name: str, checkpoint_sha256: str = "",
                 device: str = "auto", amp: Literal["auto", "fp16", "bf16", "none"] = "auto",
                 channels_last: bool = True, cpu_threads: int | None = None) -> None:
        import torch

        if cpu_threads is not None:
            torch.set_num_threads(cpu_threads)  # several services or workers per host oversubscribe otherwise

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise StreamError(f"device {device!r} requested but CUDA is not available")
        self.device = torch.device(device)
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
        self.channels_last = channels_last and on_gpu
        self.model = model.to(self.device).eval()
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last_3d)
        shape = (1, 3, 1, 1, 1)
        self._mean = torch.tensor(spec.mean, device=self.device).view(shape) * 255.0
        self._std = torch.tensor(spec.std, device=self.device).view(shape) * 255.0

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str = "auto",
                        amp: Literal["auto", "fp16", "bf16", "none"] = "auto",
                        cpu_threads: int | None = None) -> "TorchPredictor":
        """Load a ``soccerkd train`` checkpoint (via :func:`soccerkd.train.checkpoint.load_model`)."""
        from soccerkd.train.checkpoint import load_model

        model, spec, meta = load_model(path, device="cpu")
        return cls(model, spec, model_name=meta["model_name"], checkpoint_sha256=meta["checkpoint_sha256"],
                   device=device, amp=amp, cpu_threads=cpu_threads)

    def preprocess_frame(self, rgb: "np.ndarray") -> Any:
        import numpy as np
        import torch

        crop = resize_crop(rgb, resize=self.input_spec.resize, size=self.input_spec.size)
        return torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))

    def batch_tensor(self, windows: Sequence["ClipWindow[Any]"]) -> Any:
        """Stack windows into the normalised ``B×C×T×H×W`` float input on the device."""
        import torch

        clips = torch.stack([torch.stack(list(w.frames), dim=1) for w in windows])  # B,C,T,H,W uint8
        if self.device.type == "cuda":
            clips = clips.pin_memory().to(self.device, non_blocking=True)
        x = (clips.float() - self._mean) / self._std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        return x

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
