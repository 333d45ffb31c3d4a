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
