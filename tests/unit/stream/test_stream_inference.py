"""TorchPredictor: batched decode into the frame store, batching across cameras, memory format per
model family, CPU and CUDA (AMP, nvJPEG) parity."""

import numpy as np
import pytest

from soccerkd.spec import ClipSpec, InputSpec
from stream.core.ports import FrameJob
from stream.core.windowing import ClipWindow
from stream.core.wire import CorruptFrameError, FrameSizeMismatchError
from stream.inference.images import decode_image, encode_image
from stream.inference.predictors import TorchPredictor
from stream.inference.preprocess import resize_crop

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


def jpegs(n, size=(64, 48), seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    # smooth content (upscaled noise) so JPEG round trips stay close and decoders agree
    frames = [np.ascontiguousarray(np.roll(np.kron(base, np.ones((8, 8, 1), np.uint8)), 3 * i, axis=1))
              for i in range(n)]
    return [encode_image(f, quality=95) for f in frames]


def windows(pred, cams=("x", "y"), n=3):
    slots = pred.prepare([FrameJob(j, 64, 48) for j in jpegs(n + 3)])
    return [ClipWindow(c, i, i + 3, tuple(range(i, i + 4)), tuple(slots[i:i + 4]), (0, 1, 2, 3))
            for c in cams for i in range(n)]


def test_resize_crop_shorter_side_then_centre():
    img = np.zeros((48, 64, 3), np.uint8)
    img[:, 32:] = 255
    out = resize_crop(img, resize=36, size=32)
    assert out.shape == (32, 32, 3) and out[:, 0].max() == 0 and out[:, -1].min() == 255


def test_serving_resize_matches_the_training_transform():
    """Served frames go through the same resize + crop as training's evaluation transform."""
    from soccerkd.data.transforms import build_transform

    rgb = np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    served = resize_crop(rgb, resize=36, size=32).astype(np.float32)
    mean, std = np.array(SPEC.mean) * 255, np.array(SPEC.std) * 255
    trained = build_transform(SPEC, train=False)(rgb[None])[:, 0].permute(1, 2, 0).numpy() * std + mean
    assert np.abs(served - trained).max() <= 1.0 + 1e-4   # uint8 rounding only


def test_cpu_prepare_writes_the_training_preprocessing_into_the_store():
    pred = TorchPredictor(TinyNet(), SPEC, model_name="tiny", device="cpu")
    assert pred.decode == "cpu" and pred.amp == "none" and not pred.channels_last
    data = jpegs(3)
    slots = pred.prepare([FrameJob(d, 64, 48) for d in data])
    assert len(set(slots)) == 3 and pred.store.in_use == 3
    for slot, d in zip(slots, data):
        want = resize_crop(decode_image(d, width=64, height=48), resize=36, size=32)
        assert np.array_equal(pred.store.tensor[slot].permute(1, 2, 0).numpy(), want)


def test_prepare_reports_bad_frames_and_frees_their_slots():
    pred = TorchPredictor(TinyNet(), SPEC, model_name="tiny", device="cpu", decode_threads=2)
    good = jpegs(2)
    out = pred.prepare([FrameJob(good[0], 64, 48), FrameJob(b"\xff\xd8garbage", 64, 48),
                        FrameJob(good[1], 32, 24)])
    assert isinstance(out[0], int)
    assert isinstance(out[1], CorruptFrameError) and isinstance(out[2], FrameSizeMismatchError)
    assert pred.store.in_use == 1
    pred.release([out[0]])
    assert pred.store.in_use == 0


def test_large_frames_decode_at_a_draft_size_close_to_full_decode():
    from stream.inference.preprocess import draft_scale

    assert [draft_scale(w, h, 128) for w, h in ((320, 240), (640, 480), (1280, 720), (1920, 1080))] == [1, 1, 2, 4]
    rng = np.random.default_rng(2)
    base = rng.integers(0, 255, (9, 16, 3), dtype=np.uint8)
    big = np.kron(base, np.ones((80, 80, 1), np.uint8))                    # 1280x720, smooth content
    jobs = [FrameJob(encode_image(big, quality=90), 1280, 720)]
    spec = InputSpec(clip=SPEC.clip, size=112, resize=128, class_names=SPEC.class_names)
    full = TorchPredictor(TinyNet(), spec, model_name="tiny", device="cpu", jpeg_draft=False)
    draft = TorchPredictor(TinyNet(), spec, model_name="tiny", device="cpu")
    a = full.store.tensor[full.prepare(jobs)].float()
    b = draft.store.tensor[draft.prepare(jobs)].float()
    assert (a - b).abs().mean() < 1.0 and (a - b).abs().max() <= 40
    wrong = draft.prepare([FrameJob(jobs[0].data, 1280, 718)])   # the size check still holds at 1/2 size
    assert isinstance(wrong[0], FrameSizeMismatchError) and "1280x720" in str(wrong[0])


def test_threads_and_store_growth_give_identical_frames():
    data = jpegs(40)
    one = TorchPredictor(TinyNet(), SPEC, model_name="tiny", device="cpu")
    many = TorchPredictor(TinyNet(), SPEC, model_name="tiny", device="cpu", decode_threads=3)
    many.store = type(many.store)(SPEC.size, capacity=4)   # forces several doublings
    a = one.prepare([FrameJob(d, 64, 48) for d in data])
    b = many.prepare([FrameJob(d, 64, 48) for d in data])
    assert many.store.capacity >= 40
    assert torch.equal(one.store.tensor[a], many.store.tensor[b])


def test_cpu_predict_probabilities():
    pred = TorchPredictor(TinyNet(), SPEC, model_name="tiny", device="cpu")
    probs = pred.predict(windows(pred))
    assert probs.shape == (6, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    one = pred.predict(windows(pred)[:1])
    assert np.allclose(one[0], probs[0], atol=1e-5)  # batch composition does not change a window's output


def test_batch_tensor_is_the_stacked_normalised_frames():
    pred = TorchPredictor(TinyNet(), SPEC, model_name="tiny", device="cpu")
    ws = windows(pred, cams=("x",), n=2)
    x = pred.batch_tensor(ws)
    frames = pred.store.tensor
    want = torch.stack([torch.stack([frames[s] for s in w.frames]) for w in ws])  # B,T,C,H,W
    want = want.permute(0, 2, 1, 3, 4).float()
    mean = torch.tensor(SPEC.mean).view(1, 3, 1, 1, 1) * 255
    std = torch.tensor(SPEC.std).view(1, 3, 1, 1, 1) * 255
    assert x.shape == (2, 3, 4, 32, 32) and torch.allclose(x, (want - mean) / std, atol=1e-5)


def test_the_gpu_decoder_logic_runs_on_the_cpu_too():
    """NvJpegDecoder is torchvision's decode_jpeg on a list plus a batched resize; on the CPU the
    same code runs with libjpeg, so its batching, size checks and fallbacks are covered here."""
    from stream.inference.framestore import FrameStore
    from stream.inference.preprocess import CpuJpegDecoder, NvJpegDecoder

    data = [FrameJob(d, 64, 48) for d in jpegs(6)] + [FrameJob(d, 32, 24) for d in jpegs(2, size=(32, 24))]
    bad = [FrameJob(b"\xff\xd8garbage", 64, 48), FrameJob(b"PNG", 64, 48), FrameJob(data[0].data, 64, 40)]
    store_t, store_c = FrameStore(32, capacity=4), FrameStore(32, capacity=4)
    jobs = data[:3] + bad + data[3:]
    slots = store_t.alloc(len(jobs))
    errors = NvJpegDecoder(SPEC, device="cpu").start(jobs, store_t, slots)()
    assert [type(e).__name__ if e else None for e in errors] == [None] * 3 + [
        "CorruptFrameError", "NotJpegError", "FrameSizeMismatchError"] + [None] * 5
    good = [i for i, e in enumerate(errors) if e is None]
    ref = store_c.alloc(len(good))
    assert CpuJpegDecoder(SPEC).start([jobs[i] for i in good], store_c, ref)() == [None] * len(good)
    a = store_t.tensor[[slots[i] for i in good]].float()
    b = store_c.tensor[ref].float()
    assert (a - b).abs().mean() < 1.0   # same filter; float vs uint8 resize rounding only


def test_gpu_decode_needs_cuda():
    from stream.errors import StreamError

    with pytest.raises(StreamError, match="decode 'gpu' needs a CUDA device"):
        TorchPredictor(TinyNet(), SPEC, model_name="tiny", device="cpu", decode="gpu")


def _small_model(name):
    from soccerkd.models import create_model

    spec = InputSpec(clip=ClipSpec(num_frames=4, frame_stride=1), size=32, resize=36,
                     class_names=("a", "b", "c", "d"))
    return create_model(name, num_classes=4, frames=4, input_spec=spec), spec


def _model_names():
    from soccerkd.models import list_models

    return list_models()


@pytest.mark.parametrize("name", _model_names())
def test_memory_format_applies_to_every_registered_model(name):
    from soccerkd.models import memory_format_for

    model, _ = _small_model(name)
    fmt = memory_format_for(model)
    assert fmt == (torch.channels_last if name.startswith("tsm_") else torch.channels_last_3d)
    model = model.eval().to(memory_format=fmt)   # the call the GPU predictor makes; it used to raise for TSM
    x = torch.randn(2, 3, 4, 32, 32)
    if fmt == torch.channels_last_3d:
        x = x.contiguous(memory_format=fmt)
    with torch.inference_mode():
        assert model(x).shape == (2, 4)


# -- CUDA --------------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.parametrize("amp", ["bf16", "fp16", "none"])
def test_cuda_amp_channels_last_matches_cpu(amp):
    cpu = TorchPredictor(TinyNet(), SPEC, model_name="tiny", device="cpu")
    gpu = TorchPredictor(TinyNet(), SPEC, model_name="tiny", device="cuda", amp=amp, decode="cpu")
    assert gpu.channels_last and gpu.amp == amp and gpu.store.device.type == "cpu"
    assert np.allclose(gpu.predict(windows(gpu)), cpu.predict(windows(cpu)), atol=2e-2 if amp != "none" else 1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("name", _model_names())
def test_cuda_serves_every_registered_family_end_to_end(name):
    """Each family through TorchPredictor on CUDA: nvJPEG decode, device store, channels-last, AMP."""
    model, spec = _small_model(name)
    pred = TorchPredictor(model, spec, model_name=name, device="cuda")
    assert pred.decode == "gpu" and pred.store.device.type == "cuda"
    probs = pred.predict(windows(pred))
    assert probs.shape == (6, 4) and np.allclose(probs.sum(1), 1, atol=1e-3)


@pytest.mark.gpu
def test_gpu_decode_matches_cpu_decode():
    """nvJPEG + GPU resize against OpenCV: close frames, the same predictions on a fixed model."""
    cpu = TorchPredictor(TinyNet(), SPEC, model_name="tiny", device="cpu")
    gpu = TorchPredictor(TinyNet(), SPEC, model_name="tiny", device="cuda", amp="none", decode="gpu")
    data = [FrameJob(d, 64, 48) for d in jpegs(12)]
    a = cpu.store.tensor[cpu.prepare(data)].float()
    b = gpu.store.tensor[gpu.prepare(data)].float().cpu()
    # nvJPEG upsamples chroma differently from libjpeg-turbo: at these frames' sharp 8x8 colour
    # edges the colour channels differ by 4.8 on average (measured on an H200: R 4.4, G 3.0, B 7.1;
    # max 59) while luma agrees to 0.3; smooth content agrees to 0.4 in every channel, max 3
    # (benchmarks/gpu_decode_diff.py). What matters is luma and the predictions.
    luma = lambda t: 0.299 * t[:, 0] + 0.587 * t[:, 1] + 0.114 * t[:, 2]
    assert (luma(a) - luma(b)).abs().mean() < 1.0 and (a - b).abs().max() <= 64
    pc, pg = cpu.predict(windows(cpu)), gpu.predict(windows(gpu))
    assert np.array_equal(pc.argmax(1), pg.argmax(1)) and np.allclose(pc, pg, atol=2e-2)
    bad = gpu.prepare([FrameJob(b"\xff\xd8garbage", 64, 48), data[0]])
    assert isinstance(bad[0], CorruptFrameError) and isinstance(bad[1], int)


def test_the_frame_store_stops_at_its_budget_and_the_frames_past_it_are_refused():
    """At 5428071 one message of 4,096 tiny frames grew the store from 256 to 4,352 slots. The
    store now stops at model.frame_store_mb; a poll's frames past it come back as limit_exceeded
    (their messages are dead-lettered) and the rest are served."""
    from stream.core.wire import LimitExceededError
    from stream.inference.framestore import FrameStore, FrameStoreFull

    budget_mb = 300 * 3 * 32 * 32 / 2**20   # 300 frames of 32 px
    pred = TorchPredictor(TinyNet(), SPEC, model_name="tiny", device="cpu", frame_store_mb=budget_mb)
    assert pred.store.max_capacity == 300
    out = pred.prepare([FrameJob(d, 64, 48) for d in jpegs(8)] * 50)   # 400 frames
    assert sum(isinstance(p, int) for p in out) == 300 and pred.store.capacity == 300
    refused = [p for p in out if not isinstance(p, int)]
    assert len(refused) == 100 and all(isinstance(p, LimitExceededError) for p in refused)
    assert "model.frame_store_mb" in str(refused[0])
    pred.release([p for p in out if isinstance(p, int)])
    assert pred.store.in_use == 0 and pred.store.available == 300
    store = FrameStore(8, capacity=4, max_bytes=10 * 3 * 8 * 8)
    with pytest.raises(FrameStoreFull, match="frame_store_mb"):
        store.alloc(11)
