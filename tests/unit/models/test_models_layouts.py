"""Published checkpoint layouts (MIT-TSM, MMAction2 TSM/TSN, torchvision) load into our TSM ResNets.

The state dicts are synthetic: our own model's tensors renamed the way each codebase names them
(a K400 checkpoint cannot be downloaded here), which is what the adapters have to undo.
"""

import re

import pytest
import torch

from soccerkd.errors import WeightsError
from soccerkd.models import create_model
from soccerkd.models.layouts import detect_layout, to_torchvision


def _mit(state, shifted):
    out = {}
    for k, v in state.items():
        m = re.match(r"(layer\d+\.\d+)\.conv1\.weight$", k)
        if m and m.group(1) in shifted:
            k = k.replace(".conv1.weight", ".conv1.net.weight")
        out["module.new_fc." + k[3:] if k.startswith("fc.") else "module.base_model." + k] = v
    return out


def _mm(state, shifted):
    out = {}
    for k, v in state.items():
        if k.startswith("fc."):
            out["cls_head.fc_cls." + k[3:]] = v
            continue
        if k.startswith("conv1."):
            k = "conv1.conv." + k[6:]
        elif k.startswith("bn1."):
            k = "conv1.bn." + k[4:]
        else:
            m = re.match(r"(layer\d+\.\d+)\.(conv|bn)(\d)\.(.+)$", k)
            d = re.match(r"(layer\d+\.\d+)\.downsample\.([01])\.(.+)$", k)
            if m:
                block, kind, i, rest = m.groups()
                part = "bn" if kind == "bn" else ("conv.net" if i == "1" and block in shifted else "conv")
                k = f"{block}.conv{i}.{part}.{rest}"
            elif d:
                block, i, rest = d.groups()
                k = f"{block}.downsample.{'conv' if i == '0' else 'bn'}.{rest}"
        out["backbone." + k] = v
    return out


def _same_trunk(a, b):
    return all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items() if not k.startswith("fc."))


@pytest.mark.parametrize("layout", ["mit_tsm", "mmaction2", "mmaction2_tsn", "torchvision"])
def test_published_layouts_load_and_reinitialise_the_k400_head(tmp_path, layout):
    k400 = create_model("tsm_resnet50", num_classes=400, frames=8)
    shifted = k400.shifted_blocks() if layout != "mmaction2_tsn" else set()
    state = k400.state_dict()
    payload = {"mit_tsm": lambda: {"epoch": 50, "arch": "resnet50", "state_dict": _mit(state, shifted)},
               "mmaction2": lambda: {"meta": {}, "state_dict": _mm(state, shifted)},
               "mmaction2_tsn": lambda: {"meta": {}, "state_dict": _mm(state, shifted)},
               "torchvision": lambda: state}[layout]()
    torch.save(payload, tmp_path / "k400.pth")
    model = create_model("tsm_resnet50", num_classes=4, frames=8, weights=str(tmp_path / "k400.pth"))
    assert _same_trunk(k400, model)
    assert model.weights_report.reinitialised == ("fc.weight", "fc.bias")
    assert model.weights_report.layout == layout.replace("_tsn", "")
    # and the layout can be forced
    forced = create_model("tsm_resnet50", num_classes=4, frames=8, weights=str(tmp_path / "k400.pth"),
                          weights_layout=layout.replace("_tsn", ""))
    assert _same_trunk(k400, forced)


def test_wrong_forced_layout_reports_the_unmatched_keys(tmp_path):
    src = create_model("tsm_resnet18", num_classes=4, frames=2)
    torch.save({"state_dict": _mm(src.state_dict(), src.shifted_blocks())}, tmp_path / "mm.pth")
    with pytest.raises(WeightsError) as info:
        create_model("tsm_resnet18", num_classes=4, frames=2, weights=str(tmp_path / "mm.pth"),
                     weights_layout="torchvision")
    text = str(info.value)
    assert "'torchvision' key layout" in text and "missing keys" in text and "backbone.conv1.conv.weight" in text
    assert "weights_layout" in text


def test_shift_every_defaults_to_the_reference_and_is_checked_against_the_file(tmp_path):
    r101 = create_model("tsm_resnet101", num_classes=400, frames=8)
    assert r101.shift_every == 2 and "layer3.1" not in r101.shifted_blocks() and "layer3.2" in r101.shifted_blocks()
    assert create_model("tsm_resnet50", num_classes=4, frames=8).shift_every == 1
    torch.save({"state_dict": _mit(r101.state_dict(), r101.shifted_blocks())}, tmp_path / "r101.pth")
    ok = create_model("tsm_resnet101", num_classes=4, frames=8, weights=str(tmp_path / "r101.pth"))
    assert _same_trunk(r101, ok)
    with pytest.raises(WeightsError, match="shift_every"):
        create_model("tsm_resnet101", num_classes=4, frames=8, weights=str(tmp_path / "r101.pth"), shift_every=1)


def test_shift_every_changes_which_blocks_mix_time():
    torch.manual_seed(0)
    a = create_model("tsm_resnet18", num_classes=4, frames=4, shift_every=1).eval()
    b = create_model("tsm_resnet18", num_classes=4, frames=4, shift_every=2).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 3, 4, 32, 32)
    assert not torch.allclose(a(x), b(x))
    with pytest.raises(Exception, match="shift_every"):
        create_model("tsm_resnet18", num_classes=4, frames=4, shift_every=0)


def test_detect_layout():
    assert detect_layout(["base_model.conv1.weight"]) == "mit_tsm"
    assert detect_layout(["backbone.conv1.conv.weight", "cls_head.fc_cls.weight"]) == "mmaction2"
    assert detect_layout(["conv1.weight", "fc.weight"]) == "torchvision"
    assert to_torchvision({"backbone.layer2.0.downsample.bn.running_mean": 1}, "mmaction2")[0] == \
        {"layer2.0.downsample.1.running_mean": 1}
    with pytest.raises(WeightsError, match="'caffe'"):
        to_torchvision({}, "caffe")
