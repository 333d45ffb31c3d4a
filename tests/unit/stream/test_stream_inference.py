"""TorchPredictor: per-frame preprocessing, batching across cameras, CPU and CUDA (AMP) parity."""

import numpy as np
import pytest

from soccerkd.spec import ClipSpec, InputSpec
from stream.inference import TorchPredictor, resize_crop
from stream.windowing import ClipWindow

torch = pytest.importorskip("torch")
SPEC = InputSpec(clip=ClipSpec(num_frames=4, frame_stride=1), size=32, resize=36, class_names=("a", "b", "c"))


class TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv3d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 3)

    def forward(self, x):
        assert x.shape[1:] == (3, 4, 32, 32)
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3, 4)))


def windows(pred, cams=("x", "y"), n=3):
    rng = np.random.default_rng(0)
    frames = [pred.preprocess_frame(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)) for _ in range(n + 3)]
    return [ClipWindow(c, i, i + 3, tuple(range(i, i + 4)), tuple(frames[i:i + 4]), (0, 1, 2, 3))
            for c in cams for i in range(n)]


def test_resize_crop_shorter_side_then_centre():
    img = np.zeros((48, 64, 3), np.uint8)
    img[:, 32:] = 255
    out = resize_crop(img, resize=36, size=32)
    assert out.shape == (32, 32, 3) and out[:, 0].max() == 0 and out[:, -1].min() == 255


def test_cpu_predict_probabilities():
    pred = TorchPredictor(TinyNet(), SPEC, model_name="tiny", device="cpu")
    assert pred.amp == "none" and not pred.channels_last
    frame = pred.preprocess_frame(np.zeros((48, 64, 3), np.uint8))
    assert frame.dtype == torch.uint8 and tuple(frame.shape) == (3, 32, 32)
    probs = pred.predict(windows(pred))
    assert probs.shape == (6, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    one = pred.predict(windows(pred)[:1])
    assert np.allclose(one[0], probs[0], atol=1e-5)  # batch composition does not change a window's output


@pytest.mark.gpu
@pytest.mark.parametrize("amp", ["bf16", "fp16", "none"])
def test_cuda_amp_channels_last_matches_cpu(amp):
    cpu = TorchPredictor(TinyNet(), SPEC, model_name="tiny", device="cpu")
    gpu = TorchPredictor(TinyNet(), SPEC, model_name="tiny", device="cuda", amp=amp)
    assert gpu.channels_last and gpu.amp == amp
    ws = windows(cpu)
    assert np.allclose(gpu.predict(ws), cpu.predict(ws), atol=2e-2 if amp != "none" else 1e-4)
