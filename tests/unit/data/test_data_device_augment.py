"""Issue 12: the fast loader's training augmentation (random resized crop + flip) runs on the device.

The worker slices the clip and draws the box and flip from the item's (seed, epoch, index)
generator; DeviceNormalize crops, resizes and flips the batch. The device here is the CPU: the
same code runs on a GPU.
"""

import numpy as np
import pytest
import torch

from soccerkd.data.datasets import SoccerDB1
from soccerkd.data.synth import SynthConfig, generate_dataset
from soccerkd.data.transforms import ClipTransform, DeviceNormalize, collate_clips
from soccerkd.spec import ClipSpec, InputSpec


def _smooth_frames(t=4, h=45, w=60):
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([127 + 100 * np.sin(xx / 5.0 + c) * np.cos(yy / 7.0 - c) for c in range(3)], -1)
    return np.repeat(base[None], t, 0).clip(0, 255).astype(np.uint8)


def test_device_crop_draws_the_worker_box_and_matches_its_pixels():
    spec = InputSpec(clip=ClipSpec(num_frames=4), size=32, resize=45)
    frames = _smooth_frames()
    worker = ClipTransform(spec, train=True)
    fast = ClipTransform(spec, train=True, uint8=True)
    for seed in range(6):
        ref = worker(frames, generator=torch.Generator().manual_seed(seed))
        item = fast.device_item(frames, generator=torch.Generator().manual_seed(seed))
        assert item["frames"].dtype == torch.uint8 and item["frames"].shape == (3, 4, 45, 60)
        assert tuple(item["box"].tolist()) == worker.draw_crop(45, 60, torch.Generator().manual_seed(seed))
        out = DeviceNormalize(spec)(collate_clips([(item, 0, 0)])[0])[0]
        assert out.shape == (3, 4, 32, 32)
        # same crop, same flip; roi_align's area sampling vs antialiased bilinear differ a little
        err = (out - ref).abs() * torch.tensor(spec.std).view(3, 1, 1, 1) * 255
        assert err.mean() < 4.0 and err.max() < 40, (seed, float(err.mean()), float(err.max()))


def test_collate_pads_frames_of_other_sizes_and_boxes_still_point_into_them():
    spec = InputSpec(clip=ClipSpec(num_frames=2), size=8, resize=16)
    a = {"frames": torch.full((3, 2, 16, 20), 200, dtype=torch.uint8), "box": torch.tensor([0, 0, 16, 20, 0.0])}
    b = {"frames": torch.full((3, 2, 16, 24), 50, dtype=torch.uint8), "box": torch.tensor([2, 4, 12, 20, 1.0])}
    batch, labels, vids = collate_clips([(a, 1, 7), (b, 2, 8)])
    assert batch["frames"].shape == (2, 3, 2, 16, 24) and labels.tolist() == [1, 2] and vids.tolist() == [7, 8]
    out = DeviceNormalize(spec).crop(batch["frames"], batch["box"])
    torch.testing.assert_close(out[0], torch.full_like(out[0], 200.0))  # padding is outside a's box
    torch.testing.assert_close(out[1], torch.full_like(out[1], 50.0))


def test_flip_is_applied_per_sample():
    spec = InputSpec(clip=ClipSpec(num_frames=1), size=4, resize=4)
    ramp = torch.arange(4, dtype=torch.uint8).repeat(3, 1, 4, 1) * 50  # 3×1×4×4, brighter to the right
    frames = torch.stack([ramp, ramp])
    out = DeviceNormalize(spec).crop(frames, torch.tensor([[0, 0, 4, 4, 0.0], [0, 0, 4, 4, 1.0]]))
    torch.testing.assert_close(out[0], ramp.float())
    torch.testing.assert_close(out[1], ramp.float().flip(-1))


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth_aug")
    generate_dataset(root, clips_per_class=3, seed=0, cfg=SynthConfig(64, 48, 10), progress=False)
    return root


def test_fast_training_items_depend_only_on_seed_epoch_and_index(tiny_root):
    spec = InputSpec(clip=ClipSpec(num_frames=3, frame_stride=2), size=24, resize=30,
                     class_names=("dribble", "kick", "run", "walk"))

    def items(epoch, order):
        ds = SoccerDB1(tiny_root, spec, split="train", train=True, cache="memory", seed=5, fast=True).preload(progress=False)
        ds.set_epoch(epoch)
        return {i: ds[i] for i in order}

    a, b = items(1, [0, 1, 2, 3]), items(1, [3, 2, 1, 0])
    for i in a:
        assert torch.equal(a[i][0]["frames"], b[i][0]["frames"]) and torch.equal(a[i][0]["box"], b[i][0]["box"])
    c = items(2, [0, 1, 2, 3])
    assert any(not torch.equal(a[i][0]["box"], c[i][0]["box"]) for i in a)
    ds = SoccerDB1(tiny_root, spec, split="train", train=True, cache="memory", seed=5, fast=True).preload(progress=False)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=ds.collate_fn)
    batch, labels, _ = next(iter(loader))
    assert DeviceNormalize(spec)(batch).shape == (4, 3, 3, 24, 24) and labels.shape == (4,)


def test_crop_scale_bounds_the_random_crop_area(tiny_root):
    spec = InputSpec(clip=ClipSpec(num_frames=2, frame_stride=2), size=24, resize=30,
                     class_names=("dribble", "kick", "run", "walk"))
    ds = SoccerDB1(tiny_root, spec, split="train", train=True, cache="memory", seed=1, fast=True,
                   crop_scale=(0.8, 1.0)).preload(progress=False)
    for i in range(len(ds)):
        item = ds[i][0]
        _, _, ch, cw, _ = item["box"].tolist()
        h, w = item["frames"].shape[-2:]
        assert ch * cw >= 0.7 * h * w  # 0.8 of the area, up to the aspect ratio's rounding
