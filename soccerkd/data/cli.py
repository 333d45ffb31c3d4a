"""``soccerkd data synth|split|inspect``: generate procedural clips, split a dataset, inspect one."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from soccerkd.data.splits import SplitManifest


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="generate, split and inspect video datasets")
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    synth = sub.add_parser("synth", help="write procedural soccer clips (SoccerDB1 layout) and a split manifest")
    synth.add_argument("--out", type=Path, required=True, help="output directory (class folders + manifest.json)")
    synth.add_argument("--clips-per-class", type=int, required=True, help="clips to generate for each class")
    synth.add_argument("--seed", type=int, default=0, help="generator and split seed (default 0)")
    synth.add_argument("--size", default="160x120", help="frame size WIDTHxHEIGHT (default 160x120)")
    synth.add_argument("--frames", type=int, default=32, help="frames per clip (default 32)")
    synth.add_argument("--fps", type=float, default=25.0, help="frame rate (default 25)")
    synth.add_argument("--workers", type=int, default=1, help="processes rendering in parallel (default 1)")
    synth.add_argument("--version", type=int, default=3, choices=(2, 3, 4),
                       help="generator version (default 3: classes need time; 4: v3's motion with a broadcast "
                            "look: textured grass, crowd, boards, wide to close shots, blur, score bug, JPEG; "
                            "2: the demo's older clips)")
    synth.set_defaults(handler=_synth)

    probe = sub.add_parser("probe", help="how much one frame of procedural clips gives away: a single-frame "
                                         "probe against a same-budget clip model (no rendering)")
    probe.add_argument("--version", type=int, default=3, choices=(2, 3, 4),
                       help="generator version (default 3; the probe reads the simulated scene, so v4's look "
                            "does not enter it, only its motion and ball)")
    probe.add_argument("--size", default="128x96", help="frame size WIDTHxHEIGHT (default 128x96)")
    probe.add_argument("--frames", type=int, default=24, help="frames per clip (default 24)")
    probe.add_argument("--train-per-class", type=int, default=150, help="training clips per class (default 150)")
    probe.add_argument("--test-per-class", type=int, default=60, help="held-out clips per class (default 60)")
    probe.add_argument("--seed", type=int, default=0, help="generator and probe seed (default 0)")
    probe.add_argument("--hidden", type=int, default=64, help="width of both MLPs' 2 hidden layers (default 64)")
    probe.add_argument("--steps", type=int, default=1500, help="Adam steps of batch 256 per MLP (default 1500)")
    probe.add_argument("--json", type=Path, default=None, metavar="PATH",
                       help="also write the result (with per-class accuracies) to this JSON file")
    probe.set_defaults(handler=_probe)

    split = sub.add_parser("split", help="write a seeded, stratified train/val/test manifest for a dataset")
    split.add_argument("root", type=Path, help="dataset root with one folder per class")
    split.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    split.add_argument("--fractions", type=float, nargs=3, default=(0.7, 0.15, 0.15), metavar=("TRAIN", "VAL", "TEST"),
                       help="split fractions (default 0.7 0.15 0.15)")
    split.add_argument("--classes", nargs="+", default=None,
                       help="class names (default: every class folder found)")
    split.add_argument("--out", type=Path, default=None, help="manifest path (default ROOT/manifest.json)")
    split.add_argument("--force", action="store_true",
                       help="overwrite an existing manifest that differs (runs trained on it record its sha256, "
                            "so KD refuses their teachers afterwards); without it the command refuses")
    split.add_argument("--group-by", default=None, metavar="REGEX|CSV",
                       help="keep groups (e.g. source matches) within one split: a regex on the relative "
                            "path (first capture group = group) or a CSV of path,group rows")
    split.set_defaults(handler=_split)

    insp = sub.add_parser("inspect", help="print class counts, durations, fps, resolution; write a contact sheet")
    insp.add_argument("path", type=Path, help="dataset root (class folders) or one video")
    insp.add_argument("--sheet", type=Path, default=None, help="contact sheet PNG (default PATH/contact_sheet.png)")
    insp.add_argument("--per-class", type=int, default=6, help="sample videos per class on the sheet (default 6)")
    insp.set_defaults(handler=_inspect)


def _synth(args: argparse.Namespace) -> int:
    from soccerkd.data.synth import SynthConfig, generate_dataset, parse_size

    w, h = parse_size(args.size)
    cfg = SynthConfig(width=w, height=h, num_frames=args.frames, fps=args.fps, version=args.version)
    res = generate_dataset(args.out, clips_per_class=args.clips_per_class, seed=args.seed, cfg=cfg,
                           workers=args.workers)
    print(f"wrote {res['clips']} clips to {args.out} in {res['seconds']:.1f} s ({res['clips_per_s']:.1f} clips/s)")
    for split, counts in res["counts"].items():
        print(f"  {split:<5} " + " ".join(f"{k}={v}" for k, v in counts.items()))
    print(f"manifest: {res['manifest']}")
    return 0


def _probe(args: argparse.Namespace) -> int:
    import json

    from soccerkd.data.probe import run_probe
    from soccerkd.data.synth import SynthConfig, parse_size

    w, h = parse_size(args.size)
    res = run_probe(SynthConfig(width=w, height=h, num_frames=args.frames, version=args.version),
                    train_per_class=args.train_per_class, test_per_class=args.test_per_class, seed=args.seed,
                    hidden=args.hidden, steps=args.steps)
    record = {"version": args.version, "seed": args.seed, "hidden": args.hidden, "steps": args.steps,
              "train_per_class": args.train_per_class, **res.as_dict()}
    print(json.dumps(record))
    print(f"single frame: {res.frame_acc:.1%} per frame, {res.frame_video_acc:.1%} per video; "
          f"clip model: {res.clip_video_acc:.1%} per video")
    print("per class (video)   " + "  ".join(f"{c:>8}" for c in res.frame_video_per_class))
    print("  single frame      " + "  ".join(f"{v:>8.1%}" for v in res.frame_video_per_class.values()))
    print("  clip model        " + "  ".join(f"{v:>8.1%}" for v in res.clip_video_per_class.values()))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


def _split(args: argparse.Namespace) -> int:
    from soccerkd.data.folders import discover_classes, scan_videos
    import sys

    from soccerkd.data.splits import (MANIFEST_NAME, make_grouped_split, make_split, read_groups, split_warnings,
                                      write_manifest)
    from soccerkd.wording import plural

    classes = tuple(args.classes) if args.classes else discover_classes(args.root)
    videos = scan_videos(args.root, classes)
    if args.group_by:
        manifest = make_grouped_split(videos, classes, read_groups(videos, args.group_by), seed=args.seed,
                                      fractions=args.fractions, extra={"group_by": args.group_by})
        print(f"{plural(len(manifest.extra['groups']), 'group')}, each in one split")
    else:
        manifest = make_split(videos, classes, seed=args.seed, fractions=args.fractions)
    path = args.out or args.root / MANIFEST_NAME
    if _may_write_manifest(manifest, path, force=args.force):
        write_manifest(manifest, path)
    for split, counts in manifest.counts().items():
        print(f"{split:<5} " + " ".join(f"{k}={v}" for k, v in counts.items()))
    for text in split_warnings(manifest):
        print(f"WARNING {text}", file=sys.stderr)
    print(f"manifest: {path}")
    return 0


def _may_write_manifest(manifest: "SplitManifest", path: Path, *, force: bool) -> bool:
    """False when ``path`` already holds this very split; refuses (without ``force``) to replace
    another one, since checkpoints and KD teachers are tied to a manifest by its sha256."""
    import sys

    from soccerkd.data.splits import manifest_sha256, read_manifest
    from soccerkd.errors import DataError

    if not path.exists():
        return True
    try:
        old = manifest_sha256(read_manifest(path))
    except DataError:
        old = None
    if old == manifest_sha256(manifest):
        print(f"{path} already holds this split; left as it is", file=sys.stderr)
        return False
    if not force:
        raise DataError(f"manifest {str(path)!r} already exists and holds another split; pass --force to "
                        f"overwrite it (runs trained on it, and KD with their teachers, will no longer match), "
                        f"or --out NEW.json to write it elsewhere")
    print(f"warning: overwriting manifest {path}" + (f" (sha256 {old[:12]})" if old else ""), file=sys.stderr)
    return True


def _inspect(args: argparse.Namespace) -> int:
    from soccerkd.data.inspect import format_summary, inspect_dataset

    print(format_summary(inspect_dataset(args.path, sheet=args.sheet, per_class=args.per_class)))
    return 0
