"""Model registry: build any network by name through its keyword-only typed factory.

Every registered factory has the signature
``factory(*, num_classes, weights=None, frames=None, input_spec=None, hub_dir=None, **options)``
and returns an ``nn.Module`` that maps ``B×C×T×H×W`` float clips to ``B×num_classes`` logits and
carries ``model.input_spec`` (:class:`soccerkd.spec.InputSpec`) and ``model.model_name``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from soccerkd.errors import ConfigError
from soccerkd.spec import SOCCERDB1_CLASSES, InputSpec

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: its factory and what the rest of the library needs to know."""

    name: str
    factory: Callable[..., "nn.Module"]
    family: str
    description: str


_REGISTRY: dict[str, ModelEntry] = {}
_FAMILIES_LOADED = False


def register_model(*, family: str, description: str) -> Callable[[Callable[..., "nn.Module"]], Callable[..., "nn.Module"]]:
    """Decorator: register a factory under its function name."""

    def wrap(factory: Callable[..., "nn.Module"]) -> Callable[..., "nn.Module"]:
        name = factory.__name__
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelEntry(name=name, factory=factory, family=family, description=description)
        return factory

    return wrap


def _load_families() -> None:
    # Family modules import torch; load them on first use so `import soccerkd.models` stays cheap.
    global _FAMILIES_LOADED
    if not _FAMILIES_LOADED:
        from soccerkd.models import efficientnet_lite, tsm, video_resnet  # noqa: F401  (registers on import)

        _FAMILIES_LOADED = True


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    _load_families()
    return sorted(_REGISTRY)


def model_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; :class:`ConfigError` naming the choices if unknown."""
    _load_families()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def create_model(name: str, *, num_classes: int, weights: Any = None, frames: int | None = None,
                 input_spec: InputSpec | None = None, **options: Any) -> "nn.Module":
    """Build model ``name`` with a ``num_classes``-way head, optionally loading ``weights``.

    ``weights``: ``None`` (random init), a torchvision weight name of the family (``"DEFAULT"``,
    ``"KINETICS400_V1"``, ``"IMAGENET1K_V1"``...), or a local file path (state dict or checkpoint
    dict). ``frames`` is the clip length T (family default when omitted); ``input_spec`` replaces
    the family's default spec. Other ``options`` go to the factory (e.g. ``dropout``, ``hub_dir``).
    """
    entry = model_entry(name)
    accepted = inspect.signature(entry.factory).parameters
    for key in options:
        if key not in accepted:
            allowed = ", ".join(k for k in accepted if k not in ("num_classes", "weights", "frames", "input_spec"))
            raise ConfigError(f"model {name!r} has no option {key!r}; it accepts: {allowed}")
    model = entry.factory(num_classes=num_classes, weights=weights, frames=frames, input_spec=input_spec, **options)
    model.model_name = name
    return model


def memory_format_for(model: "nn.Module") -> Any:
    """The channels-last layout that suits ``model``'s convolutions.

    3D-convolution families (R3D, MC3, R(2+1)D) take ``torch.channels_last_3d``. The 2D/TSM family
    runs 2D convolutions on ``(B·T)×C×H×W`` frames and takes ``torch.channels_last``: asking it for
    the 3D format fails with "required rank 5 tensor", because its weights are rank 4.
    """
    import torch
    from torch import nn

    if any(isinstance(m, nn.Conv3d) for m in model.modules()):
        return torch.channels_last_3d
    return torch.channels_last


def default_class_names(num_classes: int) -> tuple[str, ...]:
    """SoccerDB1's four names for a 4-way head, else ``class_0``, ``class_1``, ..."""
    if num_classes == len(SOCCERDB1_CLASSES):
        return SOCCERDB1_CLASSES
    return tuple(f"class_{i}" for i in range(num_classes))


def resolve_input_spec(*, model: str, num_classes: int, frames: int | None, input_spec: InputSpec | None,
                       default: Callable[[int | None], InputSpec]) -> InputSpec:
    """The spec a factory uses: ``input_spec`` checked against num_classes/frames, or the default."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ConfigError(f"{model}: num_classes must be an integer >= 2, got {num_classes!r}")
    if frames is not None and (isinstance(frames, bool) or not isinstance(frames, int) or frames < 1):
        raise ConfigError(f"{model}: frames must be an integer >= 1, got {frames!r}")
    if input_spec is None:
        spec = default(frames)
        return InputSpec(clip=spec.clip, size=spec.size, resize=spec.resize, mean=spec.mean, std=spec.std,
                         class_names=default_class_names(num_classes))
    if input_spec.num_classes != num_classes:
        raise ConfigError(f"{model}: num_classes={num_classes} but input_spec has {input_spec.num_classes} "
                          f"class names {input_spec.class_names!r}")
    if frames is not None and input_spec.clip.num_frames != frames:
        raise ConfigError(f"{model}: frames={frames} but input_spec.clip.num_frames={input_spec.clip.num_frames}")
    return input_spec


__all__ = ["ModelEntry", "create_model", "default_class_names", "list_models", "memory_format_for",
           "model_entry", "register_model", "resolve_input_spec"]
