import re

import torch
import pytest

from soccerkd.errors import CheckpointError
from soccerkd.spec import ClipSpec, InputSpec
from soccerkd.train.checkpoint import file_sha256, load_checkpoint, load_model, save_checkpoint


def test_save_load_round_trip_is_weights_only_safe(tmp_path):
    spec = InputSpec(clip=ClipSpec(num_frames=2), size=32, resize=36, class_names=("a", "b", "c"))
    path = save_checkpoint(tmp_path / "x.pt", model_state={"w": torch.ones(2)}, input_spec=spec.to_dict(),
                           epoch=3, config={"epochs": 5, "out_dir": "runs/x"}, model_name="m")
    ckpt = load_checkpoint(path)  # torch.load(weights_only=True) inside
    assert ckpt["epoch"] == 3 and ckpt["model_name"] == "m" and ckpt["format_version"] == 1
    assert InputSpec.from_dict(ckpt["input_spec"]) == spec
    assert torch.equal(ckpt["model_state"]["w"], torch.ones(2))
    assert not list(tmp_path.glob(".*tmp*"))


def test_load_model_rebuilds_the_registry_model(tmp_path):
    from soccerkd.models import create_model

    torch.manual_seed(0)
    spec = InputSpec(clip=ClipSpec(num_frames=2), size=32, resize=32, class_names=("a", "b", "c"))
    model = create_model("tsm_resnet18", num_classes=3, frames=2, input_spec=spec).eval()
    path = save_checkpoint(tmp_path / "best.pt", model_state=model.state_dict(), model_name="tsm_resnet18",
                           model_kwargs={}, input_spec=spec.to_dict(), class_names=list(spec.class_names))
    loaded, loaded_spec, meta = load_model(path)
    assert loaded_spec == spec and not loaded.training
    assert meta["model_name"] == "tsm_resnet18" and meta["class_names"] == ["a", "b", "c"]
    assert meta["checkpoint_sha256"] == file_sha256(path) and len(meta["checkpoint_sha256"]) == 64
    x = torch.randn(1, 3, 2, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_missing_corrupt_and_foreign_files_name_the_path(tmp_path):
    with pytest.raises(CheckpointError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="bad.pt"):
        load_checkpoint(bad)
    foreign = save_checkpoint(tmp_path / "foreign.pt", weights={"w": torch.ones(1)})
    with pytest.raises(CheckpointError, match="foreign.pt.*lacks model_name"):
        load_model(foreign)


def test_mismatched_weights_are_reported(tmp_path):
    spec = InputSpec(clip=ClipSpec(num_frames=2), size=32, resize=32, class_names=("a", "b"))
    path = save_checkpoint(tmp_path / "m.pt", model_state={"bogus.weight": torch.ones(1)},
                           model_name="tsm_resnet18", input_spec=spec.to_dict())
    with pytest.raises(CheckpointError, match="unexpected keys.*bogus.weight"):
        load_model(path)


def test_numpy_metadata_is_named_not_called_truncated(tmp_path):
    """Issue 25: an intact file with a numpy scalar in its metadata was reported as "truncated;
    re-download it". Safe loading refuses the numpy global; the message says so and names it."""
    import numpy as np

    from soccerkd.errors import WeightsError
    from soccerkd.models.weights import read_state_dict

    path = tmp_path / "numpy_meta.pt"
    torch.save({"model_state": {"w": torch.ones(2)}, "metrics": {"acc": np.float64(0.5)}}, path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    text = str(err.value)
    assert "numpy_meta.pt" in text and re.search(r"numpy\.(_core|core)\.multiarray\.scalar", text)
    assert "not truncated" in text and "re-download" not in text and "weights_only=False" not in text
    with pytest.raises(WeightsError, match=r"holds a numpy value \(numpy\.(_core|core)\.multiarray\.scalar\)"):
        read_state_dict(path)


def test_save_checkpoint_stores_numpy_values_as_plain_ones(tmp_path):
    import numpy as np

    path = save_checkpoint(tmp_path / "x.pt", model_state={"w": torch.ones(2)},
                           metrics={"acc": np.float32(0.25), "cm": np.eye(2, dtype=np.int64), "n": [np.int64(3)]})
    ckpt = load_checkpoint(path)
    assert ckpt["metrics"]["acc"] == 0.25 and type(ckpt["metrics"]["acc"]) is float
    assert ckpt["metrics"]["n"] == [3] and type(ckpt["metrics"]["n"][0]) is int
    assert torch.equal(ckpt["metrics"]["cm"], torch.eye(2, dtype=torch.int64))
