"""Loading pretrained weights into registered models: torchvision enums, hub cache, local files.

Published TSM/TSN checkpoints (MIT-TSM, MMAction2) are renamed to our keys first
(:mod:`soccerkd.models.layouts`, chosen from the keys or by ``weights_layout``). Every source ends in
the same strict matcher (:func:`load_state_dict_strict`): keys and shapes must
match exactly, except the classifier head when its shape differs (a new ``num_classes``), which is
re-initialised on purpose and reported. Files are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import urllib.error
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn
from torchvision.models import WeightsEnum

from soccerkd.errors import WeightsError
from soccerkd.models.layouts import LAYOUTS, shifted_blocks, to_torchvision

# Prefixes added by wrappers: DataParallel/DDP ("module.") and torch.compile ("_orig_mod.").
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# Checkpoint dict keys that may hold the model's state dict, tried in order.
STATE_DICT_KEYS = ("model", "state_dict", "model_state_dict", "model_state")
HUB_DIR_ENV = "SOCCERKD_HUB_DIR"
_LIST_LIMIT = 12


@dataclass(frozen=True)
class LoadReport:
    """What a load did: the source, and the head keys that were re-initialised (new num_classes)."""

    source: str
    loaded: int
    reinitialised: tuple[str, ...] = field(default_factory=tuple)
    layout: str = "torchvision"

    def __str__(self) -> str:
        text = f"loaded {self.loaded} tensors from {self.source}"
        if self.layout != "torchvision":
            text += f" ({self.layout} layout)"
        if self.reinitialised:
            text += f"; re-initialised head {', '.join(self.reinitialised)} (num_classes differs)"
        return text


def resolve_hub_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """Where downloads are cached: ``path``, else ``$SOCCERKD_HUB_DIR``, else torch's hub dir."""
    if path is not None:
        return Path(path)
    env = os.environ.get(HUB_DIR_ENV)
    return Path(env) if env else Path(torch.hub.get_dir())


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """A state dict from a local file: a bare state dict or a checkpoint dict holding one.

    Wrapper prefixes (``module.``, ``_orig_mod.``) are stripped.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {str(path)!r} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated zips, non-tensor payloads
        # not torch's message: it advises weights_only=False, which runs whatever code the file holds
        from soccerkd.loading import refused_global, unreadable_reason

        what = (f"weights file {str(path)!r}" if refused_global(exc)
                else f"weights file {str(path)!r} is not a torch state dict or checkpoint, or is truncated")
        raise WeightsError(unreadable_reason(what, exc, remedy="re-download it")) from exc
    return _unwrap(obj, str(path))


def _unwrap(obj: Any, source: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping) and not _is_state_dict(obj):
        for key in STATE_DICT_KEYS:
            if key in obj and isinstance(obj[key], Mapping):
                return _unwrap(obj[key], source)
        raise WeightsError(f"{source}: a dict without tensors or any of the keys {list(STATE_DICT_KEYS)}; "
                           f"its keys are {sorted(map(str, obj))[:_LIST_LIMIT]}")
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{source}: expected a state dict, found {type(obj).__name__}")
    return {strip_prefixes(str(k)): v for k, v in obj.items()}


def _is_state_dict(obj: Mapping[Any, Any]) -> bool:
    return bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def strip_prefixes(key: str) -> str:
    """``module.layer1.0.conv1.weight`` -> ``layer1.0.conv1.weight`` (also nested/compiled)."""
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
    return key


def load_state_dict_strict(model: nn.Module, state: Mapping[str, torch.Tensor], *, source: str,
                           head_prefix: str | None = "fc.", layout: str = "torchvision") -> LoadReport:
    """Copy ``state`` into ``model`` only if keys and shapes match; else :class:`WeightsError`.

    Keys under ``head_prefix`` whose shape differs from the model's are skipped (the head keeps
    its fresh initialisation) and listed in the report. ``num_batches_tracked`` buffers may be
    absent (old torchvision files lack them). Nothing is copied when the check fails.
    """
    own = model.state_dict()
    state = {strip_prefixes(k): v for k, v in state.items()}
    reinit = tuple(k for k in own if head_prefix and k.startswith(head_prefix) and k in state
                   and tuple(state[k].shape) != tuple(own[k].shape))
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                  for k in own if k in state and k not in reinit and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or mismatched:
        raise WeightsError(_mismatch_message(model, source, missing, unexpected, mismatched, layout))
    usable = {k: v for k, v in state.items() if k not in reinit}
    model.load_state_dict(usable, strict=False)
    return LoadReport(source=source, loaded=len(usable), reinitialised=reinit, layout=layout)


def _mismatch_message(model: nn.Module, source: str, missing: list[str], unexpected: list[str],
                      mismatched: list[str], layout: str = "torchvision") -> str:
    name = getattr(model, "model_name", type(model).__name__)
    lines = [f"weights {source} (read as the {layout!r} key layout) do not match model {name}:"]
    for title, items in (("missing keys", missing), ("unexpected keys", unexpected),
                         ("shape mismatches", mismatched)):
        if items:
            shown = ", ".join(items[:_LIST_LIMIT]) + (f", ... (+{len(items) - _LIST_LIMIT} more)"
                                                     if len(items) > _LIST_LIMIT else "")
            lines.append(f"  {len(items)} {title}: {shown}")
    lines.append("  check the model name/frames, that the file was saved from this architecture, or set "
                 f"model.weights_layout (one of {', '.join(LAYOUTS[1:])}) if the layout was misjudged")
    return "\n".join(lines)


def resolve_enum(weights: Any, enum_cls: type[WeightsEnum] | None, *, model: str) -> WeightsEnum | None:
    """``weights`` as a member of ``enum_cls`` if it names one (``"DEFAULT"`` included), else None."""
    if isinstance(weights, WeightsEnum):
        if enum_cls is not None and not isinstance(weights, enum_cls):
            raise WeightsError(f"{model}: weights {weights} are for another architecture; "
                               f"use one of {[w.name for w in enum_cls]}")
        return weights
    if enum_cls is None or not isinstance(weights, str):
        return None
    key = weights.split(".")[-1].upper()  # accepts "R3D_18_Weights.KINETICS400_V1" too
    if key == "DEFAULT":
        return enum_cls.DEFAULT
    return enum_cls.__members__.get(key)


def fetch_enum_weights(weights: WeightsEnum, *, cache_dir: str | os.PathLike[str] | None = None,
                       progress: bool = True) -> Path:
    """Path of the cached file for ``weights``, downloading it into ``<hub>/checkpoints`` if absent."""
    target_dir = resolve_hub_dir(cache_dir) / "checkpoints"
    filename = weights.url.rsplit("/", 1)[-1]
    target = target_dir / filename
    if target.is_file():
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    # torchvision file names end in the first hex digits of the file's sha256.
    stem = filename.rsplit(".", 1)[0]
    hash_prefix = stem.rsplit("-", 1)[-1] if "-" in stem else None
    try:
        torch.hub.download_url_to_file(weights.url, str(target), hash_prefix=hash_prefix, progress=progress)
    except (urllib.error.URLError, OSError, RuntimeError, ValueError) as exc:
        raise WeightsError(
            f"cannot download {weights} from {weights.url} ({type(exc).__name__}: {exc}). Offline? Pass "
            f"--set model.weights=PATH to a local copy, or place the file at {str(target)!r} "
            f"(hub dir: pass hub_dir= or set ${HUB_DIR_ENV})") from exc
    return target


def check_shift_placement(model: nn.Module, raw_keys: list[str], layout: str, source: str) -> None:
    """:class:`WeightsError` when a checkpoint marks its shifted blocks and the model shifts others."""
    theirs = shifted_blocks(raw_keys, layout)
    ours = model.shifted_blocks() if hasattr(model, "shifted_blocks") else None
    if theirs is None or ours is None or theirs == ours:
        return
    only_theirs, only_ours = sorted(theirs - ours), sorted(ours - theirs)
    raise WeightsError(
        f"weights {source} shift the channels in {len(theirs)} blocks, model "
        f"{getattr(model, 'model_name', type(model).__name__)} in {len(ours)} (shift_every="
        f"{getattr(model, 'shift_every', '?')}); shifted only in the file: {only_theirs[:_LIST_LIMIT]}, "
        f"only in the model: {only_ours[:_LIST_LIMIT]}. Set model.kwargs.shift_every to match "
        f"(the reference: 2 for ResNet-101, 1 otherwise)")


def load_weights(model: nn.Module, weights: Any, *, enum_cls: type[WeightsEnum] | None, model_name: str,
                 hub_dir: str | os.PathLike[str] | None = None, progress: bool = True,
                 head_prefix: str | None = "fc.", layout: str = "auto") -> LoadReport | None:
    """Load ``weights`` (None, enum, enum name or file path) into ``model``; return the report.

    ``layout`` is the file's key layout (:data:`soccerkd.models.layouts.LAYOUTS`; ``auto`` guesses it).
    """
    if weights is None:
        return None
    member = resolve_enum(weights, enum_cls, model=model_name)
    if member is not None:
        path = fetch_enum_weights(member, cache_dir=hub_dir, progress=progress)
        source = f"{type(member).__name__}.{member.name} ({path})"
    elif isinstance(weights, (str, os.PathLike)):
        path = Path(weights)
        if not path.is_file():
            known = ["DEFAULT", *enum_cls.__members__] if enum_cls is not None else []
            raise WeightsError(f"{model_name}: weights {str(weights)!r} is neither an existing file nor a known "
                               f"weight name (known: {', '.join(known) or 'none'})")
        source = str(path)
    else:
        raise WeightsError(f"{model_name}: weights must be None, a weight name or a file path, "
                           f"got {type(weights).__name__}")
    raw = read_state_dict(path)
    state, used = to_torchvision(raw, layout)
    check_shift_placement(model, list(raw), used, source)
    report = load_state_dict_strict(model, state, source=source, head_prefix=head_prefix, layout=used)
    model.weights_report = report
    return report
