"""``soccerkd predict``: recognise actions in video files with a checkpoint, offline (no Kafka)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stream.app.predict import DEFAULT_OUT, PredictResult


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict", help="recognise actions in video files with a checkpoint, offline (no Kafka)",
        description="Runs each VIDEO through the service's own windows, model and event smoothing (as "
                    "'ingest' + 'serve' would, without a broker) and writes OUT/<video stem>/events.jsonl, "
                    "timeline.png and overlay.mp4. Progress goes to stderr.")
    parser.add_argument("videos", nargs="+", type=Path, metavar="VIDEO", help="video file(s) to run")
    parser.add_argument("--checkpoint", default="demo",
                        help="a best.pt written by 'soccerkd train', or 'demo' for the distilled student "
                             "shipped in stream/assets (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="results folder; each video gets OUT/<video stem>/ (default: ./%(default)s)")
    parser.add_argument("--no-video", action="store_true", help="do not write overlay.mp4")
    parser.add_argument("--json", action="store_true",
                        help="write the events to stdout as NDJSON, one per line, and nothing else there")
    parser.add_argument("--config", type=Path, default=None,
                        help="stream config for windows, smoothing, batching and model.device/amp (default: the "
                             "built-in values, the same as configs/stream/local.yaml; its model.checkpoint is "
                             "not used)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a stream config value, e.g. smoothing.on_threshold=0.7; repeatable")
    parser.add_argument("--device", default=None,
                        help="auto, cpu or cuda[:N] (default: the config's model.device, auto)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_predict)


def _predict(args: argparse.Namespace) -> int:
    from soccerkd.config import load_config

    from stream.inference.artifacts import find_file, resolve_checkpoint
    from stream.config import StreamConfig
    from stream.inference.predictors import TorchPredictor
    from stream.app.outputs import event_lines
    from stream.app.predict import check_videos, output_dirs, predict_video

    videos = check_videos(args.videos)
    config_path = (find_file(args.config) or args.config) if args.config is not None else None
    cfg = load_config(StreamConfig, config_path, args.overrides)
    checkpoint = resolve_checkpoint(args.checkpoint)
    m = cfg.model
    predictor = TorchPredictor.from_checkpoint(checkpoint, device=args.device or m.device, amp=m.amp,
                                               cpu_threads=m.cpu_threads, decode=m.decode,
                                               decode_threads=cfg.decode_threads, jpeg_draft=m.jpeg_draft)
    report = sys.stderr if args.json else sys.stdout
    try:
        for video, out_dir in zip(videos, output_dirs(videos, args.out)):
            result = predict_video(video, predictor, cfg.pipeline_config(), out_dir, overlay=not args.no_video,
                                   progress=not args.no_progress)
            if args.json:
                sys.stdout.write(event_lines(result.events))
                sys.stdout.flush()
            print(_summary(result), file=report)
    finally:
        predictor.close()
    return 0


def _summary(r: PredictResult) -> str:
    from collections import Counter

    from soccerkd.wording import plural

    per_label = Counter(e["label"] for e in r.events)
    labels = f" ({', '.join(f'{k}={v}' for k, v in sorted(per_label.items()))})" if per_label else ""
    lines = [f"{r.video}: {plural(len(r.events), 'event')}{labels} in {plural(r.num_frames, 'frame')}, "
             f"{r.seconds:.1f} s ({r.frames_per_second:.1f} frames/s) -> {r.out_dir}/"]
    for e in r.events:
        lines.append(f"  {e['label']:<10} {e['confidence']:.2f}  frames {e['start_seq']}..{e['end_seq']}")
    return "\n".join(lines)
