"""TSM ResNets: torchvision 2D ResNet trunks applied to T frames with a temporal shift per block.

Temporal modelling: **TSM** (Lin, Gan, Han, "TSM: Temporal Shift Module", ICCV 2019), residual
variant. Before ``conv1`` of every residual block, 1/8 of the block input's channels are shifted one
frame back in time (frame t sees t+1), another 1/8 one frame forward (t sees t-1), zero-padded at
the clip ends; the identity path keeps the unshifted input. We chose TSM over TAM (the upstream
teacher's temporal aggregation) because:

- it adds **zero parameters**, so the ImageNet ResNet checkpoints load with strict key matching and
  teacher/student differ only in their trunks (a clean comparison for distillation);
- it costs only memory moves, which matters for the CPU-sized experiments and for serving;
- it is a ``cat`` of slices, which exports to TorchScript and ONNX with exact numerical parity.

After the trunk, global average pooling, dropout and one ``Linear`` give per-frame logits; the clip
logits are their mean over frames (TSN-style consensus).

``frames=1`` reproduces the upstream SoccerKDNet per-frame protocol: the shift is a no-op (there is
no neighbour to mix with, and zero-padding would wrongly blank 1/4 of the channels), the network is
exactly a 2D ResNet, and a ``B×C×T×H×W`` input with any T is classified frame by frame and the
frame logits averaged. With ``frames > 1`` the input must have exactly T = ``frames`` frames.

``width`` (default 64, torchvision's) is the stem's channel count; every stage scales with it
(``width``, 2×, 4×, 8×). A narrower trunk (``model.kwargs: {width: 16}``, 1/16 of the FLOPs) is what
the CPU KD recipe trains from scratch; checkpoints of other widths then do not load.

``rgb_diff=True`` feeds each frame together with its difference to the previous frame (zero for
the first), 6 channels into ``conv1``: TSN's RGB-difference modality, which hands a network trained
from scratch the motion (background sliding past a following camera, legs swinging) that TSM
otherwise has to discover through its shifts. It needs a random-init (or own) ``conv1``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchvision.models import ResNet, ResNet18_Weights, ResNet50_Weights, ResNet101_Weights
from torchvision.models.resnet import BasicBlock, Bottleneck

from soccerkd.errors import ConfigError
from soccerkd.models.registry import register_model, resolve_input_spec
from soccerkd.models.weights import load_weights
from soccerkd.spec import IMAGENET_MEAN, IMAGENET_STD, ClipSpec, InputSpec

DEFAULT_FRAMES = 8
# 8 frames every 3rd source frame span 22 frames: nearly a whole 25-frame SoccerDB1 clip at 25 fps.
DEFAULT_STRIDE = 3


def clip_to_frames(x: torch.Tensor, *, num_frames: int, rgb_diff: bool) -> tuple[torch.Tensor, int, int]:
    """A ``B×C×T×H×W`` clip batch as ``(B·T)×C'×H×W`` frames for a 2D trunk, with B and T; checked
    against the model's ``num_frames`` (1: any length). With ``rgb_diff`` each frame gets its
    difference to the previous one as C more channels (zero for the first frame)."""
    if x.dim() != 5:
        raise ValueError(f"expected a B×C×T×H×W clip batch, got shape {tuple(x.shape)}")
    b, c, t, h, w = x.shape
    if num_frames != 1 and t != num_frames:
        raise ValueError(f"this model was built for {num_frames} frames, got a clip of {t}")
    if rgb_diff:
        diff = torch.cat([torch.zeros_like(x[:, :, :1]), x[:, :, 1:] - x[:, :, :-1]], dim=2)
        x, c = torch.cat([x, diff], dim=1), 2 * c
    return x.transpose(1, 2).reshape(b * t, c, h, w), b, t


class TemporalShift(nn.Module):
    """Shift ``1/fold_div`` of the channels one frame each way along time (zero-padded).

    Input and output are ``(N·T)×C×H×W`` with frames of one clip contiguous. With ``num_frames``
    of 1 it is the identity.
    """

    def __init__(self, num_frames: int, fold_div: int = 8) -> None:
        super().__init__()
        self.num_frames = num_frames
        self.fold_div = fold_div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.num_frames == 1:
            return x
        nt, c, h, w = x.shape
        x = x.view(nt // self.num_frames, self.num_frames, c, h, w)
        fold = c // self.fold_div
        back = x[:, :, :fold]            # frame t takes frame t+1's channels
        fwd = x[:, :, fold:2 * fold]     # frame t takes frame t-1's channels
        back = torch.cat([back[:, 1:], torch.zeros_like(back[:, :1])], dim=1)
        fwd = torch.cat([torch.zeros_like(fwd[:, :1]), fwd[:, :-1]], dim=1)
        out = torch.cat([back, fwd, x[:, :, 2 * fold:]], dim=2)
        return out.view(nt, c, h, w)

    def extra_repr(self) -> str:
        return f"num_frames={self.num_frames}, fold_div={self.fold_div}"


class ShiftBasicBlock(BasicBlock):
    """torchvision ``BasicBlock`` with a residual temporal shift before ``conv1`` (same state-dict keys)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shift = TemporalShift(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(self.shift(x))))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ShiftBottleneck(Bottleneck):
    """torchvision ``Bottleneck`` with a residual temporal shift before ``conv1`` (same state-dict keys)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shift = TemporalShift(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(self.shift(x))))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class TSMResNet(ResNet):
    """A 2D ResNet over T frames with temporal shift; ``B×C×T×H×W`` -> ``B×num_classes``.

    State-dict keys equal torchvision's ResNet (``conv1.weight`` ... ``fc.bias``), so ImageNet
    checkpoints load strictly.
    """

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: list[int], *, num_classes: int,
                 num_frames: int, input_spec: InputSpec, dropout: float = 0.5, shift_every: int = 1,
                 width: int = 64, rgb_diff: bool = False) -> None:
        super().__init__(block, layers, num_classes=num_classes)
        if isinstance(width, bool) or not isinstance(width, int) or width < 8:
            raise ConfigError(f"width must be an integer >= 8, got {width!r}")
        self.width = width
        if width != 64:
            self._rebuild(block, layers, num_classes, width)
        self.rgb_diff = bool(rgb_diff)
        if self.rgb_diff:
            self.conv1 = nn.Conv2d(6, width, kernel_size=7, stride=2, padding=3, bias=False)
            nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}")
        if isinstance(shift_every, bool) or not isinstance(shift_every, int) or shift_every < 1:
            raise ConfigError(f"shift_every must be an integer >= 1, got {shift_every!r}")
        self.num_frames = num_frames
        self.shift_every = shift_every
        self.dropout = nn.Dropout(dropout)
        self.input_spec = input_spec
        # block i of each stage shifts when i % shift_every == 0 (the reference's n_round); the
        # others keep an identity, so state-dict keys do not change
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            for i, blk in enumerate(stage):
                blk.shift = TemporalShift(num_frames) if i % shift_every == 0 else nn.Identity()

    def _rebuild(self, block: type[BasicBlock] | type[Bottleneck], layers: list[int], num_classes: int,
                 width: int) -> None:
        """torchvision's ResNet body and initialisation with ``width`` stem channels instead of 64."""
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)
        self.fc = nn.Linear(8 * width * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def shifted_blocks(self) -> set[str]:
        """Names (``layer3.4``) of the blocks that shift, for comparison with a checkpoint's."""
        return {f"layer{s}.{i}" for s in range(1, 5) for i, blk in enumerate(getattr(self, f"layer{s}"))
                if isinstance(blk.shift, TemporalShift)}

    def frame_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame logits ``B×T×num_classes`` (before the mean over frames)."""
        x, b, t = clip_to_frames(x, num_frames=self.num_frames, rgb_diff=self.rgb_diff)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x)).view(b, t, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.frame_logits(x).mean(dim=1)


def default_tsm_spec(frames: int | None) -> InputSpec:
    """ImageNet preprocessing at 224 px; 8 frames every 3rd source frame (1 frame for frames=1)."""
    frames = DEFAULT_FRAMES if frames is None else frames
    return InputSpec(clip=ClipSpec(num_frames=frames, frame_stride=DEFAULT_STRIDE if frames > 1 else 1),
                     size=224, resize=256, mean=IMAGENET_MEAN, std=IMAGENET_STD)


def _build(name: str, block: type[BasicBlock] | type[Bottleneck], layers: list[int], enum_cls: Any, *,
           num_classes: int, weights: Any, frames: int | None, input_spec: InputSpec | None, dropout: float,
           hub_dir: str | None, progress: bool, shift_every: int | None = None,
           weights_layout: str = "auto", width: int = 64, rgb_diff: bool = False) -> TSMResNet:
    spec = resolve_input_spec(model=name, num_classes=num_classes, frames=frames, input_spec=input_spec,
                              default=default_tsm_spec)
    # the reference TSM (MIT-TSM and MMAction2: n_round) shifts every other block when layer3 has
    # >= 23 blocks (ResNet-101), every block otherwise
    every = shift_every if shift_every is not None else (2 if layers[2] >= 23 else 1)
    if weights is not None and (width != 64 or rgb_diff):
        raise ConfigError(f"{name}: weights {weights!r} are for width 64 and RGB input, got width {width}, "
                          f"rgb_diff {rgb_diff}; drop one of them")
    model = TSMResNet(block, layers, num_classes=num_classes, num_frames=spec.clip.num_frames,
                      input_spec=spec, dropout=dropout, shift_every=every, width=width, rgb_diff=rgb_diff)
    model.model_name = name
    load_weights(model, weights, enum_cls=enum_cls, model_name=name, hub_dir=hub_dir, progress=progress,
                 layout=weights_layout)
    return model


@register_model(family="tsm", description="TSM ResNet-18 (11.2 M params): the paper's student as a clip model")
def tsm_resnet18(*, num_classes: int, weights: Any = None, frames: int | None = None,
                 input_spec: InputSpec | None = None, dropout: float = 0.5, hub_dir: str | None = None,
                 progress: bool = True, shift_every: int | None = None,
                 weights_layout: str = "auto", width: int = 64, rgb_diff: bool = False) -> TSMResNet:
    """TSM over a ResNet-18 trunk; ``weights`` may be ``"IMAGENET1K_V1"``/``"DEFAULT"`` or a file."""
    return _build("tsm_resnet18", ShiftBasicBlock, [2, 2, 2, 2], ResNet18_Weights, num_classes=num_classes,
                  weights=weights, frames=frames, input_spec=input_spec, dropout=dropout, hub_dir=hub_dir,
                  progress=progress, shift_every=shift_every,
                  weights_layout=weights_layout, width=width, rgb_diff=rgb_diff)


@register_model(family="tsm", description="TSM ResNet-50 (23.5 M params)")
def tsm_resnet50(*, num_classes: int, weights: Any = None, frames: int | None = None,
                 input_spec: InputSpec | None = None, dropout: float = 0.5, hub_dir: str | None = None,
                 progress: bool = True, shift_every: int | None = None,
                 weights_layout: str = "auto", width: int = 64, rgb_diff: bool = False) -> TSMResNet:
    """TSM over a ResNet-50 trunk; ``weights`` may be ``"IMAGENET1K_V1"``/``"IMAGENET1K_V2"``/``"DEFAULT"``."""
    return _build("tsm_resnet50", ShiftBottleneck, [3, 4, 6, 3], ResNet50_Weights, num_classes=num_classes,
                  weights=weights, frames=frames, input_spec=input_spec, dropout=dropout, hub_dir=hub_dir,
                  progress=progress, shift_every=shift_every,
                  weights_layout=weights_layout, width=width, rgb_diff=rgb_diff)


@register_model(family="tsm", description="TSM ResNet-101 (42.5 M params): the paper's teacher as a clip model")
def tsm_resnet101(*, num_classes: int, weights: Any = None, frames: int | None = None,
                  input_spec: InputSpec | None = None, dropout: float = 0.5, hub_dir: str | None = None,
                  progress: bool = True, shift_every: int | None = None,
                  weights_layout: str = "auto", width: int = 64, rgb_diff: bool = False) -> TSMResNet:
    """TSM over a ResNet-101 trunk; ``weights`` may be ``"IMAGENET1K_V1"``/``"IMAGENET1K_V2"``/``"DEFAULT"``."""
    return _build("tsm_resnet101", ShiftBottleneck, [3, 4, 23, 3], ResNet101_Weights, num_classes=num_classes,
                  weights=weights, frames=frames, input_spec=input_spec, dropout=dropout, hub_dir=hub_dir,
                  progress=progress, shift_every=shift_every,
                  weights_layout=weights_layout, width=width, rgb_diff=rgb_diff)
