"""``soccerkd train``, ``soccerkd evaluate`` and ``soccerkd sweep``: thin wrappers over the library."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from soccerkd.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="train a teacher, a student baseline or a KD student from a config")
    train.add_argument("--config", type=Path, required=True, help="YAML file, e.g. configs/train/synth_student.yaml")
    _add_set(train)
    train.add_argument("--out", type=Path, help="run directory (overrides out_dir)")
    train.add_argument("--resume", type=Path, metavar="CKPT",
                       help="continue from a run's last.pt (best.pt holds weights only: start a new run from "
                            "it with --set model.weights=PATH)")
    _add_keep(train)
    train.set_defaults(handler=_train)

    ev = subparsers.add_parser("evaluate", help="evaluate a checkpoint: clip/video/frame accuracy, P/R/F1, confusion PNG")
    ev.add_argument("--checkpoint", type=Path, required=True,
                    help="checkpoint written by soccerkd train, or 'demo' (the student shipped with the service)")
    ev.add_argument("--data", type=Path, required=True, help="dataset root (SoccerDB1 or video-folder layout)")
    ev.add_argument("--split", default="test", choices=("train", "val", "test", "all"),
                    help="split to evaluate (default: %(default)s)")
    ev.add_argument("--layout", choices=("soccerdb1", "video_folder"), help="default: the training config's")
    ev.add_argument("--manifest", type=Path, help="split manifest (default: the dataset's splits file)")
    ev.add_argument("--clips", type=int, help="uniform clips per video (default: the training config's)")
    ev.add_argument("--batch-size", type=int, default=16, help="clips per batch (default: %(default)s)")
    ev.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default: %(default)s)")
    ev.add_argument("--allow-train-overlap", action="store_true",
                    help="evaluate even when the split holds videos the checkpoint was trained on (refused "
                         "otherwise: such scores measure memory)")
    ev.add_argument("--out", type=Path, help="where to write metrics JSON and the confusion PNG (default: "
                                             "./runs/eval/<checkpoint stem>/, e.g. runs/eval/demo_student/; "
                                             "runs/eval/<run folder>-best/ for a best.pt or last.pt)")
    ev.set_defaults(handler=_evaluate)

    sw = subparsers.add_parser("sweep", help="train configs × α × T × seeds and write a mean ± std table")
    sw.add_argument("--config", type=Path, action="append", required=True,
                    help="training config; repeat to sweep several (e.g. teacher, student, kd) in order")
    sw.add_argument("--alphas", type=_floats, default=(), help="comma-separated α values for KD configs")
    sw.add_argument("--temperatures", type=_floats, default=(), help="comma-separated T values for KD configs")
    sw.add_argument("--seeds", type=_ints, default=(0, 1, 2), help="comma-separated seeds (default 0,1,2)")
    sw.add_argument("--out", type=Path, required=True, help="sweep directory (one sub-directory per run)")
    sw.add_argument("--rerun", action="store_true", help="retrain runs that already have a summary.json")
    _add_keep(sw)
    _add_set(sw)
    sw.set_defaults(handler=_sweep)


def _add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value (dotted key, YAML value); repeatable")


def _add_keep(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keep", choices=("last", "best", "both"), default=None,
                        help="checkpoints left when a run ends: best (weights for evaluate/export/serve/KD), "
                             "last (full resume state) or both (default: the config's keep, both unless set)")


def _keep_override(args: argparse.Namespace) -> list[str]:
    return [f"keep={args.keep}"] if args.keep else []


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _train(args: argparse.Namespace) -> int:
    from soccerkd.config import load_config
    from soccerkd.train.config import TrainConfig
    from soccerkd.train.runner import run_training

    overrides = list(args.overrides) + ([f"out_dir={args.out}"] if args.out else []) + _keep_override(args)
    cfg = load_config(TrainConfig, args.config, overrides)
    summary = run_training(cfg, resume=args.resume)
    print(json.dumps(summary, indent=2))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from soccerkd.train.evaluation import evaluate_checkpoint

    if args.clips is not None and args.clips < 1:
        raise ConfigError(f"--clips must be >= 1, got {args.clips}")
    metrics = evaluate_checkpoint(args.checkpoint, args.data, split=args.split, layout=args.layout,
                                  manifest=args.manifest, clips=args.clips, batch_size=args.batch_size,
                                  device=args.device, out=args.out, allow_train_overlap=args.allow_train_overlap)
    keys = ("clip_acc", "video_acc", "video_acc_upstream", "frame_acc", "macro_f1", "num_videos", "num_clips")
    print(json.dumps({k: metrics[k] for k in keys}, indent=2))
    print(f"{'class':<12}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}")
    for name, row in metrics["per_class"].items():
        print(f"{name:<12}{row['precision']:>10.3f}{row['recall']:>10.3f}{row['f1']:>10.3f}{row['support']:>9d}")
    print(f"wrote {metrics['files']['metrics']} and {metrics['files']['confusion']}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from soccerkd.train.sweep import run_sweep

    report = run_sweep(args.config, seeds=args.seeds, out=args.out, alphas=args.alphas,
                       temperatures=args.temperatures, overrides=list(args.overrides) + _keep_override(args),
                       rerun=args.rerun)
    print((args.out / "sweep.md").read_text(), end="")
    print(f"wrote {args.out / 'sweep.md'} and {args.out / 'sweep.json'} ({len(report['rows'])} rows)")
    return 0
