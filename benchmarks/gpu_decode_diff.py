"""Where nvJPEG's frames differ from OpenCV's (CUDA only): the mean absolute difference per channel
and in luma, on the gpu-marked test's blocky random-colour frames and on smooth gradients, and
whether a fixed model's predictions agree.

    python benchmarks/gpu_decode_diff.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "tests/unit/stream")]

from test_stream_inference import SPEC, TinyNet, jpegs, windows  # noqa: E402

from stream.core.ports import FrameJob  # noqa: E402
from stream.inference.images import encode_image  # noqa: E402
from stream.inference.predictors import TorchPredictor  # noqa: E402


def gradients(n: int) -> list[bytes]:
    y, x = np.mgrid[0:48, 0:64]
    return [encode_image(np.stack([(x * 4 + i) % 256, (y * 5) % 256, ((x + y) * 2) % 256], -1).astype(np.uint8),
                         quality=95) for i in range(n)]


def main() -> None:
    cpu = TorchPredictor(TinyNet(), SPEC, model_name="tiny", device="cpu")
    gpu = TorchPredictor(TinyNet(), SPEC, model_name="tiny", device="cuda", amp="none", decode="gpu")
    for name, frames in (("blocky random colours (the test's)", jpegs(12)), ("smooth gradients", gradients(12))):
        data = [FrameJob(d, 64, 48) for d in frames]
        a = cpu.store.tensor[cpu.prepare(data)].float()
        b = gpu.store.tensor[gpu.prepare(data)].float().cpu()
        d = (a - b).abs()
        luma = lambda t: 0.299 * t[:, 0] + 0.587 * t[:, 1] + 0.114 * t[:, 2]
        print(f"{name}: mean |diff| {d.mean():.2f} (R {d[:, 0].mean():.2f} G {d[:, 1].mean():.2f} "
              f"B {d[:, 2].mean():.2f}), luma {(luma(a) - luma(b)).abs().mean():.2f}, max {d.max():.0f}")
    pc, pg = cpu.predict(windows(cpu)), gpu.predict(windows(gpu))
    print("predictions: argmax equal", bool(np.array_equal(pc.argmax(1), pg.argmax(1))),
          "max |p diff|", float(np.abs(pc - pg).max()))


if __name__ == "__main__":
    main()
