"""Every registered model: tiny CPU forward, input spec, options; TSM temporal behaviour."""

import pytest
import torch
import torchvision

from soccerkd.errors import ConfigError
from soccerkd.models import create_model, list_models
from soccerkd.models.tsm import TemporalShift
from soccerkd.spec import ClipSpec, InputSpec

ALL = list_models()


def test_registry_lists_the_required_models():
    assert {"tsm_resnet18", "tsm_resnet50", "tsm_resnet101", "r3d_18", "mc3_18", "r2plus1d_18"} <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_forward_tiny_clip(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, frames=2).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 2, 32, 32))
    assert out.shape == (2, 5) and out.dtype == torch.float32 and torch.isfinite(out).all()
    spec = model.input_spec
    assert isinstance(spec, InputSpec) and spec.num_classes == 5 and spec.clip.num_frames == 2
    assert model.model_name == name


@pytest.mark.parametrize("name", ["tsm_resnet18", "r3d_18"])
def test_default_spec_and_explicit_spec(name):
    model = create_model(name, num_classes=4)
    assert model.input_spec.class_names == ("dribble", "kick", "run", "walk")
    assert model.input_spec.clip.num_frames == (8 if name.startswith("tsm") else 16)
    spec = InputSpec(clip=ClipSpec(num_frames=3), size=48, resize=56, class_names=("a", "b"))
    assert create_model(name, num_classes=2, input_spec=spec).input_spec is spec
    with pytest.raises(ConfigError, match="num_classes=3"):
        create_model(name, num_classes=3, input_spec=spec)
    with pytest.raises(ConfigError, match="frames=4"):
        create_model(name, num_classes=2, frames=4, input_spec=spec)


def test_bad_name_option_and_value_are_named():
    with pytest.raises(ConfigError, match="'resnet_999'.*tsm_resnet18"):
        create_model("resnet_999", num_classes=4)
    with pytest.raises(ConfigError, match="'depth'"):
        create_model("tsm_resnet18", num_classes=4, depth=3)
    with pytest.raises(ConfigError, match="num_classes.*1"):
        create_model("tsm_resnet18", num_classes=1)
    with pytest.raises(ConfigError, match="dropout.*1.5"):
        create_model("tsm_resnet18", num_classes=4, dropout=1.5)


def test_tsm_wrong_clip_length_is_rejected():
    model = create_model("tsm_resnet18", num_classes=4, frames=4).eval()
    with pytest.raises(ValueError, match="4 frames.*3"):
        model(torch.randn(1, 3, 3, 32, 32))


def test_temporal_shift_moves_one_eighth_each_way():
    x = torch.arange(1, 1 + 2 * 3 * 16, dtype=torch.float32).view(2 * 3, 16, 1, 1)  # N=2 clips, T=3
    out = TemporalShift(3)(x).view(2, 3, 16)
    ref = x.view(2, 3, 16)
    assert torch.equal(out[:, :2, :2], ref[:, 1:, :2]) and (out[:, 2, :2] == 0).all()
    assert torch.equal(out[:, 1:, 2:4], ref[:, :2, 2:4]) and (out[:, 0, 2:4] == 0).all()
    assert torch.equal(out[:, :, 4:], ref[:, :, 4:])
    assert torch.equal(TemporalShift(1)(x), x)


def test_tsm_mixes_time():
    """Frame t's logits change when only frame t-1 or t+1 changes; without shift (frames=1) they don't."""
    torch.manual_seed(0)
    model = create_model("tsm_resnet18", num_classes=4, frames=4).eval()
    clip = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        base = model.frame_logits(clip)[0]
        for changed in (0, 2, 3):
            other = clip.clone()
            other[:, :, changed] = torch.randn(3, 32, 32)
            diff = (model.frame_logits(other)[0] - base).abs().amax(dim=1)
            assert diff[1] > 1e-4, f"frame 1 ignores a change in frame {changed}"
            assert diff[[t for t in range(4) if t != changed]].amax() > 1e-4
    per_frame = create_model("tsm_resnet18", num_classes=4, frames=1).eval()
    other = clip.clone()
    other[:, :, 0] = torch.randn(3, 32, 32)
    with torch.no_grad():
        diff = (per_frame.frame_logits(other) - per_frame.frame_logits(clip))[0].abs().amax(dim=1)
    assert diff[0] > 1e-4 and diff[1:].amax() == 0


def test_frames_1_is_a_per_frame_2d_resnet():
    torch.manual_seed(0)
    model = create_model("tsm_resnet18", num_classes=4, frames=1).eval()
    ref = torchvision.models.resnet18(num_classes=4).eval()
    ref.load_state_dict(model.state_dict())
    clip = torch.randn(2, 3, 3, 32, 32)  # any T: each frame is classified on its own
    with torch.no_grad():
        per_frame = torch.stack([ref(clip[:, :, t]) for t in range(3)], dim=1)
        torch.testing.assert_close(model.frame_logits(clip), per_frame, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model(clip), per_frame.mean(dim=1), atol=1e-5, rtol=1e-5)


def test_tsm_has_torchvision_resnet_keys_and_no_extra_params():
    model = create_model("tsm_resnet50", num_classes=4, frames=2)
    ref = torchvision.models.resnet50(num_classes=4)
    assert list(model.state_dict()) == list(ref.state_dict())
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ref.parameters())


def test_tsm_width_scales_every_stage_and_refuses_pretrained_weights():
    import torch

    from soccerkd.errors import ConfigError
    from soccerkd.models import create_model

    m = create_model("tsm_resnet18", num_classes=4, frames=2, width=16)
    assert m.conv1.out_channels == 16 and m.layer4[0].conv1.out_channels == 128 and m.fc.in_features == 128
    assert m(torch.randn(2, 3, 2, 32, 32)).shape == (2, 4)
    assert sum(p.numel() for p in m.parameters()) < 0.08 * sum(
        p.numel() for p in create_model("tsm_resnet18", num_classes=4, frames=2).parameters())
    assert create_model("tsm_resnet50", num_classes=4, frames=2, width=16).fc.in_features == 512
    with pytest.raises(ConfigError, match="width"):
        create_model("tsm_resnet18", num_classes=4, frames=2, width=16, weights="DEFAULT")


def test_tsm_rgb_diff_sees_frame_differences():
    import torch

    from soccerkd.errors import ConfigError
    from soccerkd.models import create_model

    torch.manual_seed(0)
    m = create_model("tsm_resnet18", num_classes=4, frames=3, width=8, rgb_diff=True).eval()
    assert m.conv1.in_channels == 6
    still = torch.randn(1, 3, 1, 16, 16).repeat(1, 1, 3, 1, 1)
    moving = still.clone()
    moving[:, :, 2] += 1.0
    with torch.no_grad():
        # a still clip feeds zero differences: its logits equal those of the same net with conv1's
        # difference half removed
        plain = create_model("tsm_resnet18", num_classes=4, frames=3, width=8).eval()
        plain.load_state_dict({k: (v[:, :3] if k == "conv1.weight" else v) for k, v in m.state_dict().items()})
        torch.testing.assert_close(m(still), plain(still))
        assert not torch.allclose(m(moving), plain(moving))
    with pytest.raises(ConfigError, match="rgb_diff"):
        create_model("tsm_resnet18", num_classes=4, frames=3, rgb_diff=True, weights="DEFAULT")
