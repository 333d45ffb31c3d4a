"""Compact deployment checkpoints: int8 weights with per-output-channel scales.

A ResNet-18 student is 11.2 M parameters: 45 MB in fp32, 22 MB in fp16. Storing each conv/linear
weight as int8 with one fp32 scale per output channel (symmetric, ``scale = max|w| / 127``) takes
it to ~11 MB, small enough to ship in the repository, while BatchNorm statistics, biases and all
small tensors stay fp32. Weights are expanded back to fp32 on load, so the model runs exactly as
any other; the only change is the rounding of each weight to 1/254 of its channel's range.

    compact = compact_checkpoint(load_checkpoint("runs/kd/best.pt"))
    save_checkpoint("student.int8.pt", **compact)
    model, spec, meta = load_model("student.int8.pt")  # expanded transparently
"""

from __future__ import annotations

from typing import Any

from soccerkd.errors import CheckpointError

WEIGHTS_FORMAT = "int8-per-channel"
# Tensors smaller than this stay fp32: quantising them saves nothing worth the rounding.
_MIN_QUANT_NUMEL = 4096
# What a deployed model needs; optimizer/scheduler/history are training-only.
_KEEP = ("model_name", "model_kwargs", "input_spec", "class_names", "run", "epoch", "metrics",
         "config", "manifest_sha256", "heldout_sha256", "train_videos", "synth", "format_version")


def quantize_state_dict(state: dict[str, Any]) -> dict[str, Any]:
    """Replace every large float weight ``W`` (out×...) by ``W.q`` (int8) and ``W.scale`` (fp32)."""
    import torch

    out: dict[str, Any] = {}
    for name, tensor in state.items():
        if (isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and tensor.dim() >= 2
                and tensor.numel() >= _MIN_QUANT_NUMEL):
            flat = tensor.detach().float().reshape(tensor.shape[0], -1)
            scale = flat.abs().amax(dim=1).clamp_min(1e-12) / 127.0
            q = torch.round(flat / scale[:, None]).clamp_(-127, 127).to(torch.int8)
            out[f"{name}.q"] = q.reshape(tensor.shape)
            out[f"{name}.scale"] = scale
        else:
            out[name] = tensor
    return out


def dequantize_state_dict(state: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`quantize_state_dict`: fp32 weights under their original names."""
    out: dict[str, Any] = {}
    for name, tensor in state.items():
        if name.endswith(".scale") and f"{name[:-6]}.q" in state:
            continue
        if name.endswith(".q"):
            base = name[:-2]
            if f"{base}.scale" not in state:
                raise CheckpointError(f"compact weights: {name!r} has no matching {base + '.scale'!r}")
            scale = state[f"{base}.scale"]
            out[base] = (tensor.float().reshape(tensor.shape[0], -1) * scale[:, None]).reshape(tensor.shape)
        else:
            out[name] = tensor
    return out


def compact_checkpoint(ckpt: dict[str, Any]) -> dict[str, Any]:
    """A deployment checkpoint: the model's int8 weights and what is needed to run it."""
    if "model_state" not in ckpt:
        raise CheckpointError("compact_checkpoint needs a checkpoint with 'model_state'")
    if ckpt.get("weights_format") == WEIGHTS_FORMAT:
        return dict(ckpt)
    compact = {k: ckpt[k] for k in _KEEP if k in ckpt}
    compact["model_state"] = quantize_state_dict(ckpt["model_state"])
    compact["weights_format"] = WEIGHTS_FORMAT
    return compact


def expand_model_state(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The fp32 ``model_state`` of any checkpoint, compact or not."""
    fmt = ckpt.get("weights_format")
    if fmt is None:
        return ckpt["model_state"]
    if fmt != WEIGHTS_FORMAT:
        raise CheckpointError(f"unknown weights_format {fmt!r}; this version reads {WEIGHTS_FORMAT!r}")
    return dequantize_state_dict(ckpt["model_state"])
