"""Evaluate a trained checkpoint on a dataset split: metrics JSON plus a confusion-matrix PNG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from soccerkd.train.checkpoint import load_checkpoint, load_model


GENERIC_STEMS = ("best", "last")


def default_eval_dir(checkpoint: str | Path, base: str | Path = "runs/eval") -> Path:
    """``runs/eval/<checkpoint stem>`` under the working directory, never beside the checkpoint
    (which may sit inside the installed package). Every run names its checkpoints best.pt and
    last.pt, so for those the run's folder name comes first: ``runs/synth/kd/best.pt`` ->
    ``runs/eval/kd-best``."""
    path = Path(checkpoint)
    stem = path.stem
    if stem in GENERIC_STEMS and path.resolve().parent.name:
        stem = f"{path.resolve().parent.name}-{stem}"
    return Path(base) / stem


def evaluate_checkpoint(checkpoint: str | Path, data: str | Path, *, split: str = "test", layout: str | None = None,
                        manifest: str | Path | None = None, clips: int | None = None, batch_size: int = 16,
                        device: str = "auto", out: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Clip / video / frame accuracy, per-class P/R/F1 and confusion matrix of ``checkpoint``.

    Layout and clips per video default to the checkpoint's training config. Writes
    ``metrics_<split>.json`` and ``confusion_<split>.png`` into ``out`` (default
    :func:`default_eval_dir`); the returned dict also names those files under ``files``.
    """
    from soccerkd.train.data import build_split
    from soccerkd.train.loop import evaluate
    from soccerkd.train.plots import plot_confusion
    from soccerkd.train.runner import make_loader, resolve_device

    checkpoint = Path(checkpoint)
    train_cfg = load_checkpoint(checkpoint).get("config") or {}
    data_cfg = train_cfg.get("data", {})
    dev = resolve_device(device)
    model, spec, meta = load_model(checkpoint, device=str(dev))
    ds = build_split(data, spec, split, layout=layout or data_cfg.get("layout", "soccerdb1"), manifest=manifest,
                     clips_per_video=clips or int(data_cfg.get("eval_clips", 4)),
                     clip_layout=data_cfg.get("clip_layout", "stride"))
    loader = make_loader(ds, batch_size=batch_size, shuffle=False, num_workers=0, device=dev)
    metrics = evaluate(model, loader, class_names=spec.class_names, device=dev, amp=dev.type == "cuda",
                       frames_per_clip=spec.clip.num_frames, progress=progress, desc=f"evaluate {split}")
    out = Path(out) if out is not None else default_eval_dir(checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    files = {"metrics": str(out / f"metrics_{split}.json"), "confusion": str(out / f"confusion_{split}.png")}
    metrics.update(checkpoint=str(checkpoint), checkpoint_sha256=meta["checkpoint_sha256"],
                   model_name=meta["model_name"], data=str(data), split=split, files=files)
    Path(files["metrics"]).write_text(json.dumps(metrics, indent=2))
    plot_confusion(metrics["confusion_matrix"], spec.class_names, files["confusion"],
                   title=f"{split}, video level: {meta['model_name']}")
    return metrics
