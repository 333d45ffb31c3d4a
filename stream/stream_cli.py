"""Service subcommands: ``soccerkd ingest``, ``soccerkd serve``, ``soccerkd events tail``."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    ing = subparsers.add_parser("ingest", help="send a video/folder/URL/webcam to the frames topic as JPEG batches")
    ing.add_argument("--source", required=True, help="video file, frame folder, rtsp:// or http:// URL, or webcam index")
    ing.add_argument("--camera-id", required=True, help="camera id (message key; one camera = one ordered stream)")
    ing.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka bootstrap host:port")
    ing.add_argument("--topic", default="frames", help="frames topic (default: frames)")
    ing.add_argument("--frames-per-batch", type=int, default=8, help="frames per message (default 8)")
    ing.add_argument("--jpeg-quality", type=int, default=85, help="JPEG quality 1-100 (default 85)")
    ing.add_argument("--max-side", type=int, default=640, help="downscale so the longer side is at most this")
    ing.add_argument("--pacing", choices=("realtime", "fast"), default="realtime",
                     help="send file frames at their media time, or as fast as possible")
    ing.add_argument("--loop", action="store_true", help="restart file sources at the end")
    ing.add_argument("--start-seq", type=int, default=0, help="sequence number of the first frame")
    ing.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    ing.add_argument("--folder-fps", type=float, default=25.0, help="frame rate of a frame folder")
    ing.add_argument("--no-progress", action="store_true", help="no progress bar")
    ing.set_defaults(handler=_ingest)

    srv = subparsers.add_parser("serve", help="run the streaming service (frames topic -> action events)")
    srv.add_argument("--config", required=True, type=Path, help="YAML config (e.g. configs/stream/local.yaml)")
    srv.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config value (dotted key, YAML value); repeatable")
    srv.add_argument("--metrics-port", type=int, default=None, help="serve /metrics, /healthz, /readyz here")
    srv.add_argument("--max-seconds", type=float, default=None, help="stop by itself after this long")
    srv.add_argument("--workers", type=int, default=1,
                     help="service processes on this host, one consumer group, sharing the GPU; worker i gets "
                          "static member id <kafka.group_instance_id or hostname-serve>-w<i> and metrics port "
                          "--metrics-port + i (default: 1)")
    srv.set_defaults(handler=_serve)

    ev = subparsers.add_parser("events", help="read the action-event topic")
    sub = ev.add_subparsers(dest="events_command", required=True, metavar="ACTION")
    tail = sub.add_parser("tail", help="show events as a live table (Ctrl-C stops)")
    tail.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka bootstrap host:port")
    tail.add_argument("--topic", default="events", help="event topic (default: events)")
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest event")
    tail.add_argument("--max-events", type=int, default=None, help="stop after this many events")
    tail.add_argument("--timeout-s", type=float, default=None, help="stop after this many seconds")
    tail.add_argument("--isolation", choices=("read_uncommitted", "read_committed"), default="read_uncommitted",
                      help="read_committed shows only events of committed transactions: each event once from a "
                           "service with kafka.delivery: exactly_once (default: read_uncommitted)")
    tail.set_defaults(handler=_tail)


def _ingest(args: argparse.Namespace) -> int:
    from stream.ingest import IngestOptions, ingest

    opts = IngestOptions(source=args.source, camera_id=args.camera_id, bootstrap=args.bootstrap, topic=args.topic,
                         frames_per_batch=args.frames_per_batch, jpeg_quality=args.jpeg_quality,
                         max_side=args.max_side, pacing=args.pacing, loop=args.loop, start_seq=args.start_seq,
                         max_frames=args.max_frames, folder_fps=args.folder_fps)
    stats = ingest(opts, progress=not args.no_progress)
    state = "interrupted" if stats.interrupted else "done"
    print(f"{state}: {stats.frames} frames in {stats.batches} batches, {stats.bytes / 1e6:.1f} MB, "
          f"{stats.fps:.1f} fps")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import logging

    from soccerkd.config import load_config

    from stream.config import StreamConfig
    from stream.service import serve

    overrides = list(args.overrides)
    if args.metrics_port is not None:
        overrides.append(f"metrics_port={args.metrics_port}")
    cfg = load_config(StreamConfig, args.config, overrides)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    counts = serve(cfg, max_seconds=args.max_seconds, workers=args.workers)
    print("stopped: " + " ".join(f"{k}={v}" for k, v in counts.items()), flush=True)
    return 0


def _tail(args: argparse.Namespace) -> int:
    from stream.events import tail

    tail(args.bootstrap, args.topic, from_beginning=args.from_beginning, max_events=args.max_events,
         timeout_s=args.timeout_s, isolation=args.isolation)
    return 0
