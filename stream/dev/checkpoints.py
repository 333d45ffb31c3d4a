"""Tiny real checkpoints for tests and examples, made on the spot (nothing downloaded)."""

from __future__ import annotations

from pathlib import Path


def tiny_checkpoint(path: Path, favour: int = 0) -> Path:
    """A real TSM-ResNet18 checkpoint (4 frames, 32 px, 4 classes) whose output always favours
    class ``favour`` (softmax e^3 / (e^3 + 3)): the service's own loading and inference, at no
    training cost."""
    import torch

    from soccerkd.models import create_model
    from soccerkd.spec import ClipSpec, InputSpec
    from soccerkd.train.checkpoint import save_checkpoint

    spec = InputSpec(clip=ClipSpec(num_frames=4, frame_stride=1), size=32, resize=32,
                     class_names=("kick", "run", "walk", "dribble"))
    model = create_model("tsm_resnet18", num_classes=4, frames=4, input_spec=spec)
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.copy_(torch.eye(4)[favour] * 3.0)
    save_checkpoint(path, model_name="tsm_resnet18", model_state=model.state_dict(), input_spec=spec.to_dict(),
                    class_names=list(spec.class_names), model_kwargs={})
    return path
