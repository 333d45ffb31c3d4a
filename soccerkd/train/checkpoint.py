"""Checkpoint files: save, load (``weights_only``-safe), and rebuild a ready-to-run model.

A checkpoint is a plain dict saved with ``torch.save``. Everything except tensors and optimizer /
scheduler states is plain Python (dicts, lists, str, numbers), so ``torch.load(weights_only=True)``
reads it. Training writes two kinds:

* ``last.pt``, the full resume state: everything below plus ``optimizer_state``,
  ``scheduler_state``, ``scaler_state``, ``rng_state`` and ``history`` (every epoch's metrics);
* ``best.pt``, what inference and fine-tuning need (:data:`INFERENCE_FIELDS`): ``model_state``,
  ``epoch`` (last finished, 1-based), ``config`` (resolved TrainConfig as a dict), ``metrics``
  (that epoch's), ``best_metric``, ``model_name``, ``model_kwargs``, ``input_spec``
  (``InputSpec.to_dict()``), ``class_names``, ``run`` (teacher/student/kd), ``teacher``,
  ``manifest_sha256``, ``heldout_sha256``, ``train_videos`` (the training split's relative paths,
  which ``soccerkd evaluate`` checks the evaluated split against), ``format_version``. For the 1-epoch ResNet-101 teacher of the issue this
  is about a third of ``last.pt`` (SGD momentum alone is one more copy of the weights).

The streaming service and export use :func:`load_model`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from soccerkd.errors import CheckpointError
from soccerkd.spec import InputSpec

FORMAT_VERSION = 1
REQUIRED_FOR_MODEL = ("model_name", "model_state", "input_spec")
INFERENCE_FIELDS = ("model_state", "model_name", "model_kwargs", "input_spec", "class_names", "config", "run",
                    "epoch", "metrics", "best_metric", "teacher", "manifest_sha256", "heldout_sha256",
                    "train_videos", "synth", "format_version")
RESUME_FIELDS = ("model_state", "optimizer_state", "scheduler_state", "epoch")


def save_checkpoint(path: str | Path, **fields: Any) -> Path:
    """Write ``fields`` atomically (temp file + rename) to ``path``; returns the path.

    numpy scalars and arrays anywhere in ``fields`` are stored as Python numbers and tensors, so
    that :func:`load_checkpoint` (safe loading) can read the file back."""
    import torch

    from soccerkd.loading import plain

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields.setdefault("format_version", FORMAT_VERSION)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(plain(fields), tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def inference_fields(state: dict[str, Any]) -> dict[str, Any]:
    """The part of a full training state that ``best.pt`` keeps (see the module docstring)."""
    return {k: state[k] for k in INFERENCE_FIELDS if k in state}


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)`` onto the CPU.

    Raises :class:`CheckpointError` naming the path when it is missing, unreadable or not a dict.
    The message for an unreadable file is ours alone: torch's own one suggests loading with
    ``weights_only=False``, which would run whatever code the file holds.
    """
    import torch

    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {str(path)!r} is a directory; pass the .pt file in it "
                              f"(e.g. {str(path / 'best.pt')!r})")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated/garbage/unsafe files
        from soccerkd.loading import refused_global, unreadable_reason

        what = (f"checkpoint {str(path)!r}" if refused_global(exc)
                else f"checkpoint {str(path)!r} is not a soccerkd checkpoint or is truncated")
        raise CheckpointError(unreadable_reason(what, exc, remedy="re-download it or re-train")) from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"checkpoint {str(path)!r} holds a {type(data).__name__}, not a soccerkd "
                              f"checkpoint; pass a best.pt or last.pt written by 'soccerkd train'")
    return data


def synth_version(ckpt: dict[str, Any]) -> int | None:
    """The procedural generator version (``soccerkd.data.synth.VERSIONS``) the checkpoint's model was
    trained on: its ``synth`` record (the training manifest's, written by ``soccerkd train``), or
    None for a checkpoint trained on other data or written before the record existed."""
    record = ckpt.get("synth")
    if not isinstance(record, dict) or record.get("version") is None:
        return None
    return int(record["version"])


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_model(path: str | Path, *, device: str = "cpu") -> tuple[Any, InputSpec, dict[str, Any]]:
    """Rebuild the trained model from a checkpoint: ``(model in eval mode, input spec, meta)``.

    ``meta`` holds ``model_name``, ``model_kwargs``, ``checkpoint_sha256`` (hex sha256 of the
    file), ``checkpoint_path``, ``class_names``, ``run``, ``epoch`` and ``metrics``. Weights are
    matched strictly; a mismatch raises :class:`CheckpointError` listing missing/unexpected keys.
    """
    from soccerkd.models import create_model

    ckpt = load_checkpoint(path)
    missing = [k for k in REQUIRED_FOR_MODEL if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {str(path)!r} lacks {', '.join(missing)}; "
                              f"it was not written by soccerkd train")
    try:
        spec = InputSpec.from_dict(ckpt["input_spec"])
    except Exception as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} has an invalid input_spec: {exc}") from exc
    kwargs = dict(ckpt.get("model_kwargs") or {})
    model = create_model(ckpt["model_name"], num_classes=spec.num_classes, weights=None,
                         frames=spec.clip.num_frames, **kwargs)
    from soccerkd.compact import expand_model_state  # compact (int8) deployment checkpoints too

    result = model.load_state_dict(expand_model_state(ckpt), strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not match model {ckpt['model_name']!r}: "
            f"missing keys {list(result.missing_keys)[:10]}, unexpected keys {list(result.unexpected_keys)[:10]}")
    try:
        model.input_spec = spec
    except AttributeError:
        pass
    model.to(device).eval()
    meta = {
        "model_name": ckpt["model_name"],
        "model_kwargs": kwargs,
        "checkpoint_sha256": file_sha256(path),
        "checkpoint_path": str(path),
        "class_names": list(spec.class_names),
        "run": ckpt.get("run"),
        "epoch": ckpt.get("epoch"),
        "metrics": ckpt.get("metrics", {}),
        "manifest_sha256": ckpt.get("manifest_sha256"),
        "heldout_sha256": ckpt.get("heldout_sha256"),
    }
    return model, spec, meta
