"""Evaluate a trained checkpoint on a dataset split: metrics JSON plus a confusion-matrix PNG."""

from __future__ import annotations

import json
from pathlib import Path
import sys
from typing import Any, Callable, Sequence

from soccerkd.errors import DataError
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


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _same_dir(a: str | Path, b: str | Path | None) -> bool:
    return b is not None and Path(a).resolve() == Path(b).resolve()


def check_training_overlap(ckpt: dict[str, Any], *, data: str | Path, split: str, eval_videos: Sequence[str],
                           manifest_sha: str | None, allow: bool = False, checkpoint: str | Path = "") -> list[str]:
    """Warnings about evaluating ``ckpt`` on ``split``; :class:`DataError` when the split holds
    videos the checkpoint was trained on (unless ``allow``, or ``split`` is ``"train"``, asked for
    on purpose).

    The checkpoint records its training videos (``train_videos``, relative paths) and its manifest's
    sha256. Relative paths are only compared on the dataset the checkpoint was trained on: the same
    ``data.root``, or a split manifest with the same sha256. Older checkpoints record no training
    list; for them a manifest other than the recorded one is a warning (nothing can be checked).
    """
    name = str(checkpoint)
    recorded = ckpt.get("manifest_sha256")
    train_root = (ckpt.get("config") or {}).get("data", {}).get("root")
    same_data = _same_dir(data, train_root) or (recorded is not None and recorded == manifest_sha)
    if not same_data:
        return []
    if split == "train":
        return [f"split 'train' holds the videos checkpoint {name!r} was trained on: its scores there "
                f"measure fit, not generalisation"]
    trained = ckpt.get("train_videos")
    if trained is not None:
        overlap = sorted(set(eval_videos) & set(trained))
        if not overlap:
            return []
        text = (f"{len(overlap)} of the {len(eval_videos)} videos of split {split!r} under {str(data)!r} are "
                f"training videos of checkpoint {name!r} (e.g. {overlap[:3]}); its scores on them measure "
                f"memory, not generalisation. The checkpoint was trained with split manifest "
                f"{str(recorded)[:12]}, this split comes from {str(manifest_sha)[:12]}")
        if not allow:
            raise DataError(text + ". Evaluate with the manifest it was trained with (--manifest), or pass "
                                   "--allow-train-overlap to measure anyway")
        return [text]
    if recorded is None:
        return [f"checkpoint {name!r} records no split manifest, so whether split {split!r} holds its "
                f"training videos cannot be checked"]
    if recorded != manifest_sha:
        return [f"checkpoint {name!r} was trained with split manifest {recorded[:12]}, this split comes from "
                f"{str(manifest_sha)[:12]}; the checkpoint records no list of training videos, so whether "
                f"split {split!r} holds some of them cannot be checked"]
    return []


def _manifest_sha(data: str | Path, manifest: str | Path | None) -> str | None:
    from soccerkd.data.splits import MANIFEST_NAME, manifest_sha256, read_manifest

    path = Path(manifest) if manifest is not None else Path(data) / MANIFEST_NAME
    return manifest_sha256(read_manifest(path)) if path.is_file() else None


def evaluate_checkpoint(checkpoint: str | Path, data: str | Path, *, split: str = "test", layout: str | None = None,
                        manifest: str | Path | None = None, clips: int | None = None, batch_size: int = 16,
                        device: str = "auto", out: str | Path | None = None, progress: bool = True,
                        allow_train_overlap: bool = False, log: Callable[[str], None] = _stderr) -> dict[str, Any]:
    """Clip / video / frame accuracy, per-class P/R/F1 and confusion matrix of ``checkpoint``.

    The split is first checked against the videos the checkpoint was trained on
    (:func:`check_training_overlap`): overlap refuses unless ``allow_train_overlap``; what cannot be
    checked is logged as a warning and listed under ``warnings``.
    Layout and clips per video default to the checkpoint's training config. Writes
    ``metrics_<split>.json`` and ``confusion_<split>.png`` into ``out`` (default
    :func:`default_eval_dir`); the returned dict also names those files under ``files``.
    """
    from soccerkd.train.data import build_split
    from soccerkd.train.loop import evaluate
    from soccerkd.train.plots import plot_confusion
    from soccerkd.train.runner import make_loader, resolve_device

    checkpoint = Path(checkpoint)
    ckpt = load_checkpoint(checkpoint)
    train_cfg = ckpt.get("config") or {}
    data_cfg = train_cfg.get("data", {})
    dev = resolve_device(device)
    model, spec, meta = load_model(checkpoint, device=str(dev))
    ds = build_split(data, spec, split, layout=layout or data_cfg.get("layout", "soccerdb1"), manifest=manifest,
                     clips_per_video=clips or int(data_cfg.get("eval_clips", 4)),
                     clip_layout=data_cfg.get("clip_layout", "stride"))
    warnings = check_training_overlap(ckpt, data=data, split=split, eval_videos=[v.rel_path for v in ds.videos],
                                      manifest_sha=_manifest_sha(data, manifest), allow=allow_train_overlap,
                                      checkpoint=checkpoint)
    for text in warnings:
        log(f"WARNING {text}")
    loader = make_loader(ds, batch_size=batch_size, shuffle=False, num_workers=0, device=dev)
    metrics = evaluate(model, loader, class_names=spec.class_names, device=dev, amp=dev.type == "cuda",
                       frames_per_clip=spec.clip.num_frames, progress=progress, desc=f"evaluate {split}")
    out = Path(out) if out is not None else default_eval_dir(checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    files = {"metrics": str(out / f"metrics_{split}.json"), "confusion": str(out / f"confusion_{split}.png")}
    metrics.update(checkpoint=str(checkpoint), checkpoint_sha256=meta["checkpoint_sha256"],
                   model_name=meta["model_name"], data=str(data), split=split, files=files, warnings=warnings)
    Path(files["metrics"]).write_text(json.dumps(metrics, indent=2))
    plot_confusion(metrics["confusion_matrix"], spec.class_names, files["confusion"],
                   title=f"{split}, video level: {meta['model_name']}")
    return metrics
