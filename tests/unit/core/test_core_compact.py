"""Compact int8 deployment checkpoints: bounded rounding, small tensors untouched, clear errors."""

from __future__ import annotations

import pytest
import torch

from soccerkd.compact import (WEIGHTS_FORMAT, compact_checkpoint, dequantize_state_dict, expand_model_state,
                              quantize_state_dict)
from soccerkd.errors import CheckpointError


def test_round_trip_error_is_within_half_a_step_per_channel():
    torch.manual_seed(0)
    state = {"conv.weight": torch.randn(64, 32, 3, 3), "bn.running_mean": torch.randn(64),
             "bn.num_batches_tracked": torch.tensor(7)}
    q = quantize_state_dict(state)
    assert q["conv.weight.q"].dtype == torch.int8 and "conv.weight" not in q
    assert torch.equal(q["bn.running_mean"], state["bn.running_mean"])
    back = dequantize_state_dict(q)
    assert set(back) == set(state)
    step = state["conv.weight"].abs().amax(dim=(1, 2, 3)) / 127
    err = (back["conv.weight"] - state["conv.weight"]).abs().amax(dim=(1, 2, 3))
    assert torch.all(err <= step / 2 + 1e-7)


def test_compact_checkpoint_keeps_model_fields_and_drops_training_state():
    ckpt = {"model_state": {"fc.weight": torch.randn(128, 64)}, "model_name": "m", "input_spec": {},
            "optimizer_state": {"x": 1}, "history": [1, 2]}
    compact = compact_checkpoint(ckpt)
    assert compact["weights_format"] == WEIGHTS_FORMAT
    assert "optimizer_state" not in compact and "history" not in compact
    assert torch.allclose(expand_model_state(compact)["fc.weight"], ckpt["model_state"]["fc.weight"], atol=0.05)
    assert expand_model_state(ckpt) is ckpt["model_state"]


def test_unknown_format_and_orphan_quantised_tensor_are_named():
    with pytest.raises(CheckpointError, match="float4"):
        expand_model_state({"weights_format": "float4", "model_state": {}})
    with pytest.raises(CheckpointError, match="w.scale"):
        dequantize_state_dict({"w.q": torch.zeros(2, 2, dtype=torch.int8)})


def test_load_model_reads_a_compact_checkpoint_with_close_logits(tmp_path):
    from soccerkd.models import create_model
    from soccerkd.spec import ClipSpec, InputSpec
    from soccerkd.train.checkpoint import load_checkpoint, load_model, save_checkpoint

    torch.manual_seed(0)
    spec = InputSpec(clip=ClipSpec(num_frames=2), size=32, resize=36)
    model = create_model("tsm_resnet18", num_classes=4, frames=2, input_spec=spec).eval()
    full = save_checkpoint(tmp_path / "full.pt", model_state=model.state_dict(), model_name="tsm_resnet18",
                           model_kwargs={}, input_spec=spec.to_dict(), optimizer_state={"step": 3})
    compact = save_checkpoint(tmp_path / "compact.pt", **compact_checkpoint(load_checkpoint(full)))
    assert compact.stat().st_size < 0.3 * full.stat().st_size
    loaded, loaded_spec, meta = load_model(compact)
    assert loaded_spec == spec and meta["model_name"] == "tsm_resnet18"
    clips = torch.randn(3, 3, 2, 32, 32)
    with torch.no_grad():
        ref, out = model(clips), loaded(clips)
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()
