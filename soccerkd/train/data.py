"""The training side's adapter to :mod:`soccerkd.data`: class names, split manifest, datasets.

Training draws ``data.train_clips`` random clips per training video per epoch (augmented when
``data.augment``); val and test use ``data.eval_clips`` uniform clips per video, so video accuracy
is the mean softmax over those clips. The split comes from the manifest only, so the test split is
never seen before the final evaluation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from soccerkd.errors import DataError
from soccerkd.spec import SOCCERDB1_CLASSES, InputSpec
from soccerkd.train.config import TrainConfig
from soccerkd.wording import plural


def manifest_path(cfg: TrainConfig) -> Path:
    from soccerkd.data.splits import MANIFEST_NAME

    return Path(cfg.data.manifest) if cfg.data.manifest else Path(cfg.data.root) / MANIFEST_NAME


def dataset_class_names(cfg: TrainConfig) -> tuple[str, ...]:
    """SoccerDB1's classes, else the manifest's, else the class folders found under the root."""
    if cfg.data.layout == "soccerdb1":
        return SOCCERDB1_CLASSES
    path = manifest_path(cfg)
    if path.is_file():
        from soccerkd.data.splits import read_manifest

        return tuple(read_manifest(path).class_names)
    from soccerkd.data.folders import discover_classes

    return discover_classes(cfg.data.root)


def ensure_manifest(cfg: TrainConfig, class_names: tuple[str, ...]) -> Path:
    """The split manifest, written (seeded by ``data.split_seed``, 70/15/15) when missing."""
    path = manifest_path(cfg)
    if not path.is_file():
        import sys

        from soccerkd.data.folders import scan_videos
        from soccerkd.data.splits import make_split, split_warnings, write_manifest

        videos = scan_videos(cfg.data.root, class_names)
        manifest = make_split(videos, class_names, seed=cfg.data.split_seed)
        write_manifest(manifest, path)
        print(f"wrote split manifest {path} ({plural(len(videos), 'video')}, seed {cfg.data.split_seed})")
        # clips cut from one source (a match, a drill) look alike: split at random, the same source
        # lands in train and test and the test score measures recognition of that source
        print(f"WARNING {path} is an ungrouped split (videos assigned one by one, stratified by class): if "
              f"clips share a source, run 'soccerkd data split {cfg.data.root} --group-by REGEX|CSV' before "
              f"training, so that each source lies in one split", file=sys.stderr)
        for text in split_warnings(manifest):
            print(f"WARNING {text}", file=sys.stderr)
    return path


def build_split(root: str | Path, spec: InputSpec, split: str, *, layout: str = "soccerdb1",
                manifest: str | Path | None = None, train: bool = False, clips_per_video: int = 4,
                augment: bool = True, cache: str | None = None, seed: int | None = None,
                clip_layout: str = "stride", fast: bool = False,
                crop_scale: tuple[float, float] = (0.35, 1.0)) -> Any:
    """One split as a dataset of ``(clip, label, video_index)``: random clips when ``train``, drawn
    per item from (seed, epoch, index) when ``seed`` is given (see ``ClipDataset.set_epoch``)."""
    from soccerkd.data.datasets import SoccerDB1, VideoFolder

    cls = SoccerDB1 if layout == "soccerdb1" else VideoFolder
    ds = cls(root, spec, split=split, manifest=manifest, train=train and augment,
             sampling="random" if train else "uniform", clips_per_video=clips_per_video, cache=cache,
             seed=seed if train else None, clip_layout=clip_layout, fast=fast, crop_scale=crop_scale)
    if len(ds) == 0:
        raise DataError(f"split {split!r} of {str(root)!r} holds no videos")
    if cache is not None:
        ds.preload(progress=False)
    return ds


def build_datasets(cfg: TrainConfig, spec: InputSpec) -> dict[str, Any]:
    manifest = ensure_manifest(cfg, tuple(spec.class_names))
    d = cfg.data
    return {
        "train": build_split(d.root, spec, "train", layout=d.layout, manifest=manifest, train=True,
                             clips_per_video=d.train_clips, augment=d.augment, cache=d.cache, seed=cfg.seed,
                             clip_layout=d.clip_layout, fast=d.fast_loader, crop_scale=d.crop_scale),
        "val": build_split(d.root, spec, "val", layout=d.layout, manifest=manifest, clips_per_video=d.eval_clips,
                           cache=d.cache, clip_layout=d.clip_layout, fast=d.fast_loader),
        "test": build_split(d.root, spec, "test", layout=d.layout, manifest=manifest, clips_per_video=d.eval_clips,
                            cache=d.cache, clip_layout=d.clip_layout, fast=d.fast_loader),
    }
