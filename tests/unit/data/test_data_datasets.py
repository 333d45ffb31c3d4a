import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from soccerkd.data.datasets import SoccerDB1, VideoFolder, discover_classes
from soccerkd.data.decode import read_frames
from soccerkd.data.synth import SynthConfig, generate_dataset
from soccerkd.data.transforms import ClipTransform
from soccerkd.errors import ConfigError, DataError
from soccerkd.spec import ClipSpec, InputSpec

CFG = SynthConfig(width=96, height=72, num_frames=12, fps=25.0)


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    generate_dataset(root, clips_per_class=4, seed=0, cfg=CFG, progress=False)
    return root


def _spec(n=4, stride=2):
    return InputSpec(clip=ClipSpec(num_frames=n, frame_stride=stride), size=56, resize=64)


def test_soccerdb1_loads_synth_output(synth_root):
    train = SoccerDB1(synth_root, _spec(), split="train")
    test = SoccerDB1(synth_root, _spec(), split="test", clips_per_video=3)
    assert train.train and train.sampling == "random" and len(train) == train.num_videos
    assert test.sampling == "uniform" and len(test) == 3 * test.num_videos
    assert test.class_names == ("dribble", "kick", "run", "walk")
    clip, label, vi = test[4]
    assert clip.shape == (3, 4, 56, 56) and clip.dtype == torch.float32
    assert vi == 1 and label == test.video_labels[1]
    assert abs(float(clip.mean())) < 3
    train_paths = {v.rel_path for v in train.videos}
    assert not train_paths & {v.rel_path for v in test.videos}


def test_single_frame_mode_and_dataloader_workers(synth_root):
    ds = SoccerDB1(synth_root, _spec(n=1), split="train")
    loader = DataLoader(ds, batch_size=4, shuffle=True, num_workers=2, pin_memory=torch.cuda.is_available())
    batches = list(loader)
    assert sum(len(b[1]) for b in batches) == len(ds)
    assert batches[0][0].shape[1:] == (3, 1, 56, 56)


def test_uniform_items_are_deterministic_and_cache_matches(synth_root, tmp_path):
    plain = SoccerDB1(synth_root, _spec(), split="val", clips_per_video=2)
    mem = SoccerDB1(synth_root, _spec(), split="val", clips_per_video=2, cache="memory").preload(progress=False)
    disk = SoccerDB1(synth_root, _spec(), split="val", clips_per_video=2, cache=tmp_path / "cache")
    for i in range(len(plain)):
        ref = plain[i][0]
        torch.testing.assert_close(mem[i][0], ref)
        torch.testing.assert_close(disk[i][0], ref)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == disk.num_videos


def test_frames_layout_with_uppercase_class_folders(synth_root, tmp_path):
    for label in ("dribble", "kick", "run", "walk"):
        for k in range(2):
            frames = read_frames(synth_root / label / f"{label}_{k:04d}.mp4")
            out = tmp_path / label.capitalize() / f"vid{k}"
            out.mkdir(parents=True)
            for i, f in enumerate(frames):
                cv2.imwrite(str(out / f"{i + 1:05d}.jpg"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    ds = SoccerDB1(tmp_path, _spec(), split="all", train=False)
    assert ds.num_videos == 8 and sorted(set(ds.video_labels)) == [0, 1, 2, 3]
    assert ds[0][0].shape == (3, 4, 56, 56)
    with pytest.raises(DataError, match="no split manifest"):
        SoccerDB1(tmp_path, _spec(), split="train")


def test_video_folder_generic_classes(synth_root, tmp_path):
    import shutil

    assert discover_classes(synth_root) == ("dribble", "kick", "run", "walk")
    for name, src in (("Archery", "walk"), ("BasketballDunk", "run")):
        (tmp_path / name).mkdir()
        for k in range(3):
            shutil.copy(synth_root / src / f"{src}_{k:04d}.mp4", tmp_path / name / f"v_{name}_g0{k}.avi")
    (tmp_path / "notes").mkdir()
    classes = discover_classes(tmp_path)
    assert classes == ("Archery", "BasketballDunk")
    spec = InputSpec(clip=ClipSpec(num_frames=2), size=32, resize=40, class_names=classes)
    ds = VideoFolder(tmp_path, spec, split="all", train=True)
    assert ds.num_videos == 6 and ds.video_labels == [0, 0, 0, 1, 1, 1]
    assert ds[5][0].shape == (3, 2, 32, 32)
    with pytest.raises(DataError, match="does not know"):
        VideoFolder(synth_root, spec, split="all")
    with pytest.raises(ConfigError, match="SoccerDB1 needs"):
        SoccerDB1(tmp_path, spec)


def test_train_transform_uses_one_crop_for_all_frames():
    frame = np.random.default_rng(0).integers(0, 255, (1, 60, 80, 3), dtype=np.uint8)
    clip = np.repeat(frame, 5, 0)
    torch.manual_seed(0)
    out = ClipTransform(_spec(), train=True)(clip)
    assert out.shape == (3, 5, 56, 56)
    for t in range(1, 5):
        torch.testing.assert_close(out[:, t], out[:, 0])
    ev = ClipTransform(_spec(), train=False)
    torch.testing.assert_close(ev(clip), ev(clip))


@pytest.mark.parametrize("train", [False, True])
def test_fast_path_matches_the_float_path(train):
    """Issue 12: resize once + uint8 crop + DeviceNormalize == the per-clip float path (up to rounding)."""
    import numpy as np
    import torch

    from soccerkd.data.transforms import ClipTransform, DeviceNormalize
    from soccerkd.spec import ClipSpec, InputSpec

    spec = InputSpec(clip=ClipSpec(num_frames=4), size=32, resize=40)
    frames = np.random.default_rng(0).integers(0, 256, (4, 60, 80, 3), dtype=np.uint8)
    slow_t, fast_t = ClipTransform(spec, train=train), ClipTransform(spec, train=train, uint8=True)
    pre = fast_t.pre_resize(frames)
    assert pre.shape == (4, 40, 53, 3) and pre.dtype == np.uint8
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    slow = slow_t(ClipTransform(spec).pre_resize(frames) if train else frames, generator=g1)
    raw = fast_t(pre, generator=g2)
    assert raw.dtype == torch.uint8 and raw.shape == (3, 4, 32, 32)
    fast = DeviceNormalize(spec)(raw[None])[0]
    # rounding to uint8 (twice when a random crop resizes again) moves a value by ~1/255 at most
    torch.testing.assert_close(fast, slow, atol=2.5 / 255 / min(spec.std), rtol=0)
