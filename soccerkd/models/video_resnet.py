"""torchvision's Kinetics-400 video ResNets (R3D-18, MC3-18, R(2+1)D-18) with a new classifier.

They take ``B×C×T×H×W`` natively and pool over time themselves; we replace ``fc`` by a
``num_classes``-way ``Linear`` (so K400 weights load strictly except the re-initialised head) and
attach the input spec of their K400 recipe: 16 frames at 15 fps, 112 px crops of 128 px frames,
Kinetics mean/std.
"""

from __future__ import annotations

from typing import Any, Callable

from torch import nn
from torchvision.models import video as tv_video

from soccerkd.models.registry import register_model, resolve_input_spec
from soccerkd.models.weights import load_weights
from soccerkd.spec import KINETICS_MEAN, KINETICS_STD, ClipSpec, InputSpec

DEFAULT_FRAMES = 16
K400_FPS = 15.0


def default_video_spec(frames: int | None) -> InputSpec:
    """The K400 recipe of torchvision's video models: 16 frames at 15 fps, 112/128 px, Kinetics stats."""
    frames = DEFAULT_FRAMES if frames is None else frames
    return InputSpec(clip=ClipSpec(num_frames=frames, frame_stride=1, target_fps=K400_FPS),
                     size=112, resize=128, mean=KINETICS_MEAN, std=KINETICS_STD)


def _build(name: str, builder: Callable[..., nn.Module], enum_cls: Any, *, num_classes: int, weights: Any,
           frames: int | None, input_spec: InputSpec | None, hub_dir: str | None, progress: bool) -> nn.Module:
    spec = resolve_input_spec(model=name, num_classes=num_classes, frames=frames, input_spec=input_spec,
                              default=default_video_spec)
    model = builder(weights=None, num_classes=num_classes)
    model.input_spec = spec
    model.model_name = name
    load_weights(model, weights, enum_cls=enum_cls, model_name=name, hub_dir=hub_dir, progress=progress)
    return model


@register_model(family="video_resnet", description="torchvision R3D-18 (3D convs), Kinetics-400 weights")
def r3d_18(*, num_classes: int, weights: Any = None, frames: int | None = None,
           input_spec: InputSpec | None = None, hub_dir: str | None = None, progress: bool = True) -> nn.Module:
    """R3D-18; ``weights`` may be ``"KINETICS400_V1"``/``"DEFAULT"`` or a local file."""
    return _build("r3d_18", tv_video.r3d_18, tv_video.R3D_18_Weights, num_classes=num_classes, weights=weights,
                  frames=frames, input_spec=input_spec, hub_dir=hub_dir, progress=progress)


@register_model(family="video_resnet", description="torchvision MC3-18 (mixed 3D/2D convs), Kinetics-400 weights")
def mc3_18(*, num_classes: int, weights: Any = None, frames: int | None = None,
           input_spec: InputSpec | None = None, hub_dir: str | None = None, progress: bool = True) -> nn.Module:
    """MC3-18; ``weights`` may be ``"KINETICS400_V1"``/``"DEFAULT"`` or a local file."""
    return _build("mc3_18", tv_video.mc3_18, tv_video.MC3_18_Weights, num_classes=num_classes, weights=weights,
                  frames=frames, input_spec=input_spec, hub_dir=hub_dir, progress=progress)


@register_model(family="video_resnet", description="torchvision R(2+1)D-18 (factorised convs), Kinetics-400 weights")
def r2plus1d_18(*, num_classes: int, weights: Any = None, frames: int | None = None,
                input_spec: InputSpec | None = None, hub_dir: str | None = None, progress: bool = True) -> nn.Module:
    """R(2+1)D-18; ``weights`` may be ``"KINETICS400_V1"``/``"DEFAULT"`` or a local file."""
    return _build("r2plus1d_18", tv_video.r2plus1d_18, tv_video.R2Plus1D_18_Weights, num_classes=num_classes,
                  weights=weights, frames=frames, input_spec=input_spec, hub_dir=hub_dir, progress=progress)
