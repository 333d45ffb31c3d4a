import cv2
import numpy as np
import pytest

from soccerkd.data.decode import FrameFolderReader, open_video, probe, read_frames
from soccerkd.errors import DataError


def _frame(i, w=64, h=48):
    """BGR frame whose colour encodes the index (survives lossy coding)."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :, 2] = (i * 20) % 256  # red in RGB
    img[: h // 2, :, 1] = 200  # green top half in RGB
    return img


@pytest.fixture()
def tiny_video(tmp_path):
    path = tmp_path / "tiny.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
    for i in range(12):
        writer.write(_frame(i))
    writer.release()
    return path


def test_decode_tiny_video_info_and_rgb_order(tiny_video):
    info = probe(tiny_video)
    assert (info.num_frames, info.width, info.height) == (12, 64, 48)
    assert info.fps == pytest.approx(10.0)
    frames = read_frames(tiny_video)
    assert frames.shape == (12, 48, 64, 3) and frames.dtype == np.uint8
    red = frames[:, 30, :, 0].mean(1)
    np.testing.assert_allclose(red, [(i * 20) % 256 for i in range(12)], atol=12)
    assert frames[0, 5, :, 1].mean() > 150 and frames[0, 40, :, 1].mean() < 50


def test_seek_by_index_any_order_with_repeats(tiny_video):
    with open_video(tiny_video) as reader:
        all_frames = reader.read(range(12))
        picked = reader.read([9, 2, 2, 11, 0])
        again = reader.read([5])
    for got, i in zip(picked, [9, 2, 2, 11, 0]):
        np.testing.assert_array_equal(got, all_frames[i])
    np.testing.assert_array_equal(again[0], all_frames[5])
    with pytest.raises(DataError, match="outside 0..11"):
        read_frames(tiny_video, [12])


def test_corrupt_file_error_names_the_path(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    with pytest.raises(DataError, match="broken.mp4"):
        probe(bad)
    with pytest.raises(DataError, match="missing.avi"):
        probe(tmp_path / "missing.avi")


def test_frame_folder_natural_order_and_bad_image(tmp_path):
    folder = tmp_path / "vid"
    folder.mkdir()
    for i in (1, 2, 10):
        cv2.imwrite(str(folder / f"img_{i}.png"), _frame(i))
    reader = open_video(folder)
    assert isinstance(reader, FrameFolderReader)
    assert reader.info.num_frames == 3 and reader.info.fps == 25.0
    frames = reader.read([0, 1, 2])
    assert [int(f[30, 0, 0]) for f in frames] == [20, 40, 200]
    (folder / "img_11.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="img_11.jpg"):
        open_video(folder).read([3])
    with pytest.raises(DataError, match="holds no images"):
        (tmp_path / "empty").mkdir()
        open_video(tmp_path / "empty")
