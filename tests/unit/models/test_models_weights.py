"""Weight loading from files the tests save themselves (no network): strict match, head re-init, errors."""

import urllib.error

import pytest
import torch
import torchvision

from soccerkd.errors import WeightsError
from soccerkd.models import create_model
from soccerkd.models import weights as W


def _same(a, b):
    return all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


@pytest.mark.parametrize("wrap", ["plain", "model", "state_dict", "train_checkpoint", "module_prefix"])
def test_local_file_roundtrip(tmp_path, wrap):
    src = create_model("tsm_resnet18", num_classes=4, frames=2)
    state = src.state_dict()
    payload = {"plain": state, "model": {"model": state, "epoch": 3},
               "state_dict": {"state_dict": state},
               "train_checkpoint": {"model_name": "tsm_resnet18", "model_state": state, "optimizer_state": {}}, "module_prefix": {f"module.{k}": v for k, v in state.items()}}[wrap]
    torch.save(payload, tmp_path / "w.pt")
    dst = create_model("tsm_resnet18", num_classes=4, frames=2, weights=tmp_path / "w.pt")
    assert _same(src, dst)
    assert dst.weights_report.reinitialised == () and dst.weights_report.loaded == len(state)


def test_imagenet_style_file_loads_trunk_and_reinitialises_head(tmp_path):
    ref = torchvision.models.resnet18()  # 1000-way head, like the ImageNet checkpoint
    torch.save(ref.state_dict(), tmp_path / "resnet18.pth")
    model = create_model("tsm_resnet18", num_classes=4, frames=2, weights=str(tmp_path / "resnet18.pth"))
    assert model.weights_report.reinitialised == ("fc.weight", "fc.bias")
    assert "re-initialised head" in str(model.weights_report)
    assert torch.equal(model.layer3[0].conv1.weight, ref.layer3[0].conv1.weight)
    assert model.fc.weight.shape == (4, 512)


def test_mismatched_file_reports_missing_unexpected_and_shapes(tmp_path):
    state = create_model("tsm_resnet18", num_classes=4, frames=2).state_dict()
    state.pop("layer1.0.conv1.weight")
    state["extra.weight"] = torch.zeros(1)
    state["layer2.0.conv1.weight"] = torch.zeros(1, 1, 1, 1)
    torch.save(state, tmp_path / "bad.pt")
    fresh = create_model("tsm_resnet18", num_classes=4, frames=2)
    before = fresh.state_dict()["layer4.0.conv1.weight"].clone()
    with pytest.raises(WeightsError) as info:
        W.load_weights(fresh, tmp_path / "bad.pt", enum_cls=None, model_name="tsm_resnet18")
    msg = str(info.value)
    assert "1 missing keys: layer1.0.conv1.weight" in msg
    assert "1 unexpected keys: extra.weight" in msg
    assert "layer2.0.conv1.weight: file (1, 1, 1, 1) vs model (128, 64, 3, 3)" in msg
    assert torch.equal(fresh.state_dict()["layer4.0.conv1.weight"], before)  # nothing half-loaded


def test_wrong_architecture_file_is_a_clear_error(tmp_path):
    torch.save(create_model("r3d_18", num_classes=4, frames=2).state_dict(), tmp_path / "r3d.pt")
    with pytest.raises(WeightsError, match=r"do not match model tsm_resnet18:\n.*missing keys"):
        create_model("tsm_resnet18", num_classes=4, frames=2, weights=tmp_path / "r3d.pt")


def test_unknown_name_missing_file_and_unsafe_pickle(tmp_path):
    with pytest.raises(WeightsError, match="neither an existing file nor a known weight name.*KINETICS400_V1"):
        create_model("r3d_18", num_classes=4, weights="KINETICS600")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(WeightsError, match="junk.pt' is not a torch state dict or checkpoint, or is truncated") as err:
        create_model("r3d_18", num_classes=4, weights=tmp_path / "junk.pt")
    assert "weights_only=False" not in str(err.value)   # torch's own advice would run the file's code


def test_enum_weights_come_from_the_hub_cache(tmp_path, monkeypatch):
    """A K400 enum resolves to <hub>/checkpoints/<torchvision file name>; pre-placed there, no download."""
    enum = torchvision.models.video.R3D_18_Weights.KINETICS400_V1
    k400 = torchvision.models.video.r3d_18(num_classes=400)
    (tmp_path / "checkpoints").mkdir()
    torch.save(k400.state_dict(), tmp_path / "checkpoints" / enum.url.rsplit("/", 1)[-1])
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("tried to download"))
    model = create_model("r3d_18", num_classes=4, weights="DEFAULT", hub_dir=tmp_path)
    assert model.weights_report.reinitialised == ("fc.weight", "fc.bias")
    assert torch.equal(model.layer1[0].conv1[0].weight, k400.layer1[0].conv1[0].weight)
    monkeypatch.setenv(W.HUB_DIR_ENV, str(tmp_path))
    assert create_model("r3d_18", num_classes=4, weights="KINETICS400_V1").weights_report is not None


def test_failed_download_tells_the_user_to_pass_a_path(tmp_path, monkeypatch):
    def offline(url, dst, **kw):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsError, match=r"cannot download ResNet18_Weights.IMAGENET1K_V1.*weights=PATH"):
        create_model("tsm_resnet18", num_classes=4, weights="IMAGENET1K_V1", hub_dir=tmp_path)
