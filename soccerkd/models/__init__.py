"""Clip classification models built by name: ``create_model(name, *, num_classes, ...)``, ``list_models()``.

Families: :mod:`soccerkd.models.tsm` (TSM ResNet-18/50/101, the paper's student and teacher as clip
models) and :mod:`soccerkd.models.video_resnet` (torchvision's Kinetics-400 R3D/MC3/R(2+1)D-18).
Weight loading lives in :mod:`soccerkd.models.weights`.
"""

from soccerkd.models.registry import create_model, list_models, memory_format_for, model_entry, register_model

__all__ = ["create_model", "list_models", "memory_format_for", "model_entry", "register_model"]
