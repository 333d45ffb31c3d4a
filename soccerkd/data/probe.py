"""How much of a procedural class one frame gives away: a single-frame probe against a clip model.

Both models are the same small MLP, trained with the same budget (videos, steps, width) on what the
generator simulated for each clip, before any drawing:

* **frame probe**: one frame's :data:`~soccerkd.data.synth.FRAME_FEATURES` (the target's joint
  angles, where the ball is relative to it); its video prediction is the mean softmax over the
  clip's frames, as a ``frames=1`` student's is;
* **clip model**: the same features of all the clip's frames at once, plus the target's
  displacement (what the background motion of a following camera shows).

A generator in which time is needed keeps the frame probe near chance (25% for 4 classes) while the
clip model is clearly better. Generator v2 fails this (the issue's analysis found 83% video accuracy
from 11 per-frame features); ``soccerkd data probe --version 2`` measures it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from soccerkd.data.synth import SynthConfig, clip_motion, clip_rng, frame_features, simulate_clip
from soccerkd.errors import ConfigError
from soccerkd.spec import SOCCERDB1_CLASSES


@dataclass(frozen=True)
class ProbeResult:
    """Accuracies (0..1) on the held-out clips; ``frame_acc`` is per frame, the others per video."""

    frame_acc: float
    frame_video_acc: float
    clip_video_acc: float
    train_videos: int
    test_videos: int
    # per-class video accuracy of the frame probe and of the clip model (class name -> 0..1)
    frame_video_per_class: dict[str, float] = field(default_factory=dict)
    clip_video_per_class: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.__dict__.items()}


def _clip_frames(n: int, frames: int, stride: int) -> np.ndarray:
    span = (frames - 1) * stride + 1
    start = max(0, (n - span) // 2)
    return np.minimum(start + np.arange(frames) * stride, n - 1)


def simulate_features(cfg: SynthConfig, *, clips_per_class: int, seed: int, first_index: int = 0,
                      frames: int = 8, stride: int = 3, classes: Sequence[str] = SOCCERDB1_CLASSES
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame features ``N×frames×F``, motion ``N×frames×2`` and labels ``N`` of simulated clips.

    Clip ``k`` of class ``c`` is drawn from ``clip_rng(seed, c, first_index + k, cfg)``: the same
    scene ``soccerkd data synth`` renders for that clip.
    """
    feats, motion, labels = [], [], []
    idx = _clip_frames(cfg.num_frames, frames, stride)
    for label in classes:
        ci = SOCCERDB1_CLASSES.index(label)
        for k in range(clips_per_class):
            _, players, ball, _ = simulate_clip(label, cfg, clip_rng(seed, ci, first_index + k, cfg))
            feats.append(frame_features(players[0], ball)[idx])
            motion.append(clip_motion(players[0], cfg.fps)[idx])
            labels.append(classes.index(label))
    return np.stack(feats), np.stack(motion), np.array(labels)


def _fit_mlp(x: np.ndarray, y: np.ndarray, *, classes: int, hidden: int, steps: int, seed: int):
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(x.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                        nn.Linear(hidden, classes))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
    xt, yt = torch.from_numpy(x).float(), torch.from_numpy(y).long()
    for _ in range(steps):
        batch = torch.randint(0, len(xt), (min(256, len(xt)),), generator=gen)
        loss = nn.functional.cross_entropy(net(xt[batch]), yt[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()

    def predict(z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(net(torch.from_numpy(z).float()), 1).numpy()

    return predict


def run_probe(cfg: SynthConfig, *, train_per_class: int = 150, test_per_class: int = 60, seed: int = 0,
              frames: int = 8, stride: int = 3, hidden: int = 64, steps: int = 1500) -> ProbeResult:
    """Fit the frame probe and the clip model on ``train_per_class`` clips per class, test on others."""
    if hidden < 1 or steps < 1:
        raise ConfigError(f"probe needs hidden >= 1 and steps >= 1, got hidden={hidden!r}, steps={steps!r}")
    if train_per_class < 1 or test_per_class < 1:
        raise ConfigError(f"probe needs >= 1 train and test clip per class, got {train_per_class}, {test_per_class}")
    xf, xm, y = simulate_features(cfg, clips_per_class=train_per_class, seed=seed, frames=frames, stride=stride)
    tf, tm, ty = simulate_features(cfg, clips_per_class=test_per_class, seed=seed, first_index=train_per_class,
                                   frames=frames, stride=stride)
    n, t, f = xf.shape
    k = len(SOCCERDB1_CLASSES)
    mu, sd = xf.reshape(-1, f).mean(0), xf.reshape(-1, f).std(0) + 1e-6
    mmu, msd = xm.reshape(-1, 2).mean(0), xm.reshape(-1, 2).std(0) + 1e-6
    norm = lambda a: (a - mu) / sd  # noqa: E731
    # frame probe: every frame is a sample; a video's prediction is the mean softmax of its frames
    frame = _fit_mlp(norm(xf).reshape(-1, f), np.repeat(y, t), classes=k, hidden=hidden, steps=steps, seed=seed)
    pf = frame(norm(tf).reshape(-1, f)).reshape(len(ty), t, k)
    frame_acc = float((pf.argmax(2) == ty[:, None]).mean())
    frame_pred = pf.mean(1).argmax(1)
    frame_video_acc = float((frame_pred == ty).mean())
    # clip model: the same features of all frames at once, plus the displacement
    flat = lambda a, m: np.concatenate([norm(a), (m - mmu) / msd], 2).reshape(len(a), -1)  # noqa: E731
    clip = _fit_mlp(flat(xf, xm), y, classes=k, hidden=hidden, steps=steps, seed=seed)
    clip_pred = clip(flat(tf, tm)).argmax(1)
    clip_video_acc = float((clip_pred == ty).mean())
    def per_class(pred: np.ndarray) -> dict[str, float]:
        return {c: float((pred[ty == i] == i).mean()) for i, c in enumerate(SOCCERDB1_CLASSES)}

    return ProbeResult(frame_acc, frame_video_acc, clip_video_acc, int(n), int(len(ty)),
                       per_class(frame_pred), per_class(clip_pred))
