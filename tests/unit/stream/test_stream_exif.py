"""Issue 22, item 7: one EXIF-orientation rule for both decoders. A frame's orientation tag is
ignored and its pixels used in stored order (``stream.inference.images.IGNORE_ORIENTATION``): a
tagged frame decodes exactly as the same frame untagged, on OpenCV (which honours the tag unless
told not to) and on torchvision's ``decode_jpeg`` (the nvJPEG path; on the CPU here, on CUDA under
the ``gpu`` marker), and an orientation 5-8 frame is not a size mismatch."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from soccerkd.spec import ClipSpec, InputSpec
from stream.core.ports import FrameJob
from stream.inference.images import decode_image, encode_image

torch = pytest.importorskip("torch")
SPEC = InputSpec(clip=ClipSpec(num_frames=4, frame_stride=1), size=32, resize=36, class_names=("a", "b", "c"))


def with_orientation(jpeg: bytes, orientation: int) -> bytes:
    """``jpeg`` with an EXIF APP1 segment (one IFD entry: Orientation, tag 0x0112) after SOI."""
    assert jpeg[:2] == b"\xff\xd8"
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1) \
        + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    body = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + jpeg[2:]


def frame(width: int = 64, height: int = 48) -> bytes:
    """An asymmetric picture (a bright top-left corner), so any rotation or flip shows."""
    img = np.full((height, width, 3), 40, np.uint8)
    img[: height // 3, : width // 4] = (250, 200, 20)
    img[height // 2:, width // 2:, 2] = 180
    return encode_image(img, quality=95)


@pytest.mark.parametrize("orientation", [3, 6])
def test_the_tag_is_real_opencv_would_apply_it(orientation):
    import cv2

    plain, tagged = frame(), with_orientation(frame(), orientation)
    a = cv2.imdecode(np.frombuffer(plain, np.uint8), cv2.IMREAD_COLOR)
    b = cv2.imdecode(np.frombuffer(tagged, np.uint8), cv2.IMREAD_COLOR)   # OpenCV's default honours it
    assert a.shape != b.shape if orientation == 6 else np.abs(a.astype(int) - b.astype(int)).max() > 80


@pytest.mark.parametrize("orientation", [2, 3, 4, 5, 6, 7, 8])
def test_cpu_decode_ignores_the_orientation_tag(orientation):
    plain, tagged = frame(), with_orientation(frame(), orientation)
    assert np.array_equal(decode_image(tagged, width=64, height=48), decode_image(plain, width=64, height=48))


@pytest.mark.parametrize("draft", [False, True])
@pytest.mark.parametrize("orientation", [3, 6])
def test_the_serving_cpu_decoder_gives_the_untagged_model_input(orientation, draft):
    from stream.inference.framestore import FrameStore
    from stream.inference.preprocess import CpuJpegDecoder

    # 320x240 with resize 36 decodes reduced (IMREAD_REDUCED_COLOR_4) when draft is on
    jobs = [FrameJob(d, 320, 240) for d in (frame(320, 240), with_orientation(frame(320, 240), orientation))]
    store = FrameStore(32, capacity=4)
    slots = store.alloc(2)
    assert CpuJpegDecoder(SPEC, draft=draft).start(jobs, store, slots)() == [None, None]
    assert torch.equal(store.tensor[slots[0]], store.tensor[slots[1]])


def test_torchvision_decode_jpeg_reads_the_tag_and_is_told_to_ignore_it():
    from torchvision.io import ImageReadMode, decode_jpeg

    plain = torch.frombuffer(bytearray(frame()), dtype=torch.uint8)
    tagged = torch.frombuffer(bytearray(with_orientation(frame(), 6)), dtype=torch.uint8)
    assert decode_jpeg(tagged, mode=ImageReadMode.RGB, apply_exif_orientation=True).shape == (3, 64, 48)
    assert torch.equal(decode_jpeg(tagged, mode=ImageReadMode.RGB, apply_exif_orientation=False),
                       decode_jpeg(plain, mode=ImageReadMode.RGB))


def _nvjpeg_decoder_ignores_orientation(device: str) -> None:
    from stream.inference.framestore import FrameStore
    from stream.inference.preprocess import NvJpegDecoder

    jobs = [FrameJob(frame(), 64, 48)] + [FrameJob(with_orientation(frame(), o), 64, 48) for o in (3, 6)]
    store = FrameStore(32, capacity=4, device=device)
    slots = store.alloc(3)
    assert NvJpegDecoder(SPEC, device=device).start(jobs, store, slots)() == [None, None, None]
    for s in slots[1:]:
        assert torch.equal(store.tensor[slots[0]], store.tensor[s])


def test_the_gpu_decoder_logic_ignores_orientation_on_the_cpu():
    _nvjpeg_decoder_ignores_orientation("cpu")


@pytest.mark.gpu
def test_nvjpeg_ignores_orientation():
    _nvjpeg_decoder_ignores_orientation("cuda")
