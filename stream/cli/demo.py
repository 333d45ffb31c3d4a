"""``soccerkd demo``: the whole product end to end on a procedural match (or your own video)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="run broker -> ingest -> serve -> events end to end and print a measured summary",
        description="Starts a local Kafka broker, renders a procedural broadcast-style match with a known "
                    "action timeline (or takes --source), ingests it at real-time pace, runs the service with "
                    "the distilled student, reads the events back, and writes summary.json, timeline.png, "
                    "overlay.mp4 and events.jsonl into --out.")
    parser.add_argument("--source", type=Path, default=None,
                        help="your own video file instead of the procedural match (no ground truth then)")
    parser.add_argument("--checkpoint", default="demo",
                        help="student checkpoint: a path, or 'demo' for the distilled student shipped in "
                             "stream/assets (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (default: %(default)s)")
    parser.add_argument("--config", type=Path, default=Path("configs/stream/demo.yaml"),
                        help="service config (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the procedural match (default: %(default)s)")
    parser.add_argument("--tls", action="store_true",
                        help="give the demo broker an SSL listener and run every client over TLS")
    parser.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from stream.dev.demo import format_summary, run_demo

    result = run_demo(args.out, checkpoint=args.checkpoint, source=args.source, seed=args.seed, config=args.config,
                      tls=args.tls)
    print(format_summary(result.summary))
    print(f"\nwrote {result.out_dir / 'summary.json'}, {result.out_dir / 'timeline.png'}, "
          f"{result.out_dir / 'overlay.mp4'}, {result.out_dir / 'events.jsonl'}")
    return 0
