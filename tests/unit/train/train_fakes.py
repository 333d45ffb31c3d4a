"""Tiny in-memory models and datasets for the training tests (no data layer, no registry)."""

from __future__ import annotations

import torch
from torch import nn

from soccerkd.spec import ClipSpec, InputSpec

CLASSES = ("a", "b", "c")


class TinyClipNet(nn.Module):
    """B×C×T×H×W -> logits: a 3D conv, global pooling and a linear head."""

    def __init__(self, num_classes: int = 3, frames: int = 4, width: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, width, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm3d(width)
        self.fc = nn.Linear(width, num_classes)
        self.input_spec = InputSpec(clip=ClipSpec(num_frames=frames), size=8, resize=8,
                                    class_names=tuple(f"class_{i}" for i in range(num_classes)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3, 4)))


def tiny_factory(name: str, *, num_classes: int, weights=None, frames: int = 4, **kw) -> nn.Module:
    return TinyClipNet(num_classes=num_classes, frames=frames, **kw)


class ToyClips(torch.utils.data.Dataset):
    """``videos`` videos × ``clips`` clips; the class shows as a per-channel offset plus noise."""

    def __init__(self, videos: int = 12, clips: int = 2, frames: int = 4, size: int = 8, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.items = []
        for v in range(videos):
            label = v % len(CLASSES)
            for _ in range(clips):
                x = torch.randn(3, frames, size, size, generator=g)
                x[label] += 1.0
                self.items.append((x, label, v))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]


def toy_splits(cfg, spec):
    f = spec.clip.num_frames
    return {"train": ToyClips(24, 1, f, seed=1), "val": ToyClips(6, 2, f, seed=2), "test": ToyClips(6, 2, f, seed=3)}
