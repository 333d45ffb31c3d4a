"""Service subcommands: ``soccerkd ingest``, ``soccerkd serve``, ``soccerkd events tail``."""

from __future__ import annotations

import argparse
from pathlib import Path

from stream.cli.broker import add_bootstrap_argument, add_kafka_arguments, kafka_client, resolve_bootstrap


def register(subparsers: argparse._SubParsersAction) -> None:
    ing = subparsers.add_parser(
        "ingest", help="send cameras (video files, folders, live URLs, webcams) to the frames topic as JPEG batches",
        description="One camera (--source, --camera-id) or many in one process (--sources cameras.yaml: "
                    "'cameras: [{camera_id, source, options: {...}}]', options being any of the flags below in "
                    "snake_case). Live sources (rtsp, rtmp, http(s), udp, webcam) reconnect after an outage with "
                    "capped exponential backoff, and their frames after it start a new stream epoch.")
    ing.add_argument("--source", help="video file, frame folder, rtsp:// rtmp:// http(s):// udp:// URL, or webcam index")
    ing.add_argument("--camera-id", help="camera id (message key; one camera = one ordered stream)")
    secret = ing.add_mutually_exclusive_group()
    secret.add_argument("--source-password-env", default=None, metavar="VAR",
                        help="environment variable holding the password of --source rtsp://USER@host/..., so "
                             "that it is in no process argument; with --sources set password_env per camera")
    secret.add_argument("--source-password-file", type=Path, default=None, metavar="PATH",
                        help="file whose first line is the password of --source rtsp://USER@host/...")
    ing.add_argument("--sources", type=Path, default=None, metavar="CAMERAS_YAML",
                     help="many cameras in one process, one shared producer; a bad source never stops the others. "
                          "Edit the file and send SIGHUP (kill -HUP PID) to apply it while running: new cameras "
                          "start, removed ones send what they hold and stop, changed ones restart, the others are "
                          "not touched; a file that does not load is refused in one log line and changes nothing")
    ing.add_argument("--metrics-port", type=int, default=None,
                     help="serve /metrics, /healthz and /readyz (ready = every camera connected) here")
    ing.add_argument("--metrics-bind", default="0.0.0.0", metavar="HOST",
                     help="address the metrics endpoint binds; 127.0.0.1 keeps it on this host")
    ing.add_argument("--max-reconnects", type=int, default=None,
                     help="live sources: give up after this many reconnects in a row (default: never)")
    ing.add_argument("--reconnect-backoff", type=float, default=0.5,
                     help="live sources: seconds before the first reconnect; doubles per failure up to 30 s")
    ing.add_argument("--live-buffer", type=int, default=64,
                     help="live sources: frames held while the producer is behind; the oldest are dropped (counted)")
    add_kafka_arguments(ing)
    ing.add_argument("--connect-timeout", type=float, default=10.0, help="seconds to wait for the broker at start")
    ing.add_argument("--topic", default="frames", help="frames topic")
    ing.add_argument("--frames-per-batch", type=int, default=8, help="frames per message")
    ing.add_argument("--jpeg-quality", type=int, default=85, help="JPEG quality 1-100")
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
    srv.add_argument("--config", required=True, type=Path,
                     help="YAML config, e.g. configs/stream/local.yaml (a path: run from the repository root, "
                          "or give the full path)")
    srv.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config value (dotted key, YAML value); repeatable")
    add_bootstrap_argument(srv)
    srv.add_argument("--metrics-port", type=int, default=None, help="serve /metrics, /healthz, /readyz here")
    srv.add_argument("--max-seconds", type=float, default=None, help="stop by itself after this long")
    srv.add_argument("--workers", type=int, default=1,
                     help="service processes on this host, one consumer group, sharing the GPU; worker i gets "
                          "static member id <kafka.group_instance_id or hostname-serve>-w<i> and metrics port "
                          "--metrics-port + i")
    srv.set_defaults(handler=_serve)

    ev = subparsers.add_parser("events", help="read the action-event topic")
    sub = ev.add_subparsers(dest="events_command", required=True, metavar="ACTION")
    tail = sub.add_parser("tail", help="show events as a live table (Ctrl-C stops)")
    add_kafka_arguments(tail)
    tail.add_argument("--connect-timeout", type=float, default=10.0, help="seconds to wait for the broker")
    tail.add_argument("--topic", default="events", help="event topic")
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest event")
    tail.add_argument("--max-events", type=int, default=None, help="stop after this many events")
    tail.add_argument("--timeout-s", type=float, default=None, help="stop after this many seconds")
    tail.add_argument("--isolation", choices=("read_uncommitted", "read_committed"), default="read_uncommitted",
                      help="read_committed shows only events of committed transactions: each event once from a "
                           "service with kafka.delivery: exactly_once")
    tail.add_argument("--json", action="store_true", help="print each event as one JSON line (NDJSON), no table")
    tail.set_defaults(handler=_tail)


def _ingest(args: argparse.Namespace) -> int:
    import signal
    import threading

    from stream.kafka import admin as topics
    from stream.cli import Interrupted
    from stream.errors import StreamError, redact_url
    from stream.app.ingest import IngestOptions, ingest_many, load_cameras
    from stream.app.http import MetricsServer
    from stream.app.metrics import IngestMetrics

    if (args.sources is None) == (args.source is None) or (args.source is not None) != (args.camera_id is not None):
        raise StreamError("give either --source and --camera-id (one camera) or --sources CAMERAS_YAML (many)")
    if args.sources is not None and (args.source_password_env or args.source_password_file):
        raise StreamError("--source-password-env and --source-password-file go with --source; in a cameras file "
                          "give each camera its own password_env or password_file")
    reload_now = threading.Event()
    if args.sources is not None and threading.current_thread() is threading.main_thread():
        # a SIGHUP while starting is applied once the cameras run, not the end of the process
        signal.signal(signal.SIGHUP, lambda *_: reload_now.set())
    kafka, security = kafka_client(args, connect_timeout_s=args.connect_timeout)
    bootstrap = kafka.bootstrap
    shared = dict(bootstrap=bootstrap, topic=args.topic, frames_per_batch=args.frames_per_batch,
                  jpeg_quality=args.jpeg_quality, max_side=args.max_side, pacing=args.pacing, loop=args.loop,
                  start_seq=args.start_seq, max_frames=args.max_frames, folder_fps=args.folder_fps,
                  max_reconnects=args.max_reconnects, reconnect_backoff_s=args.reconnect_backoff,
                  live_buffer_frames=args.live_buffer)

    def check_topics(cameras: list) -> None:
        for topic in sorted({c.topic for c in cameras}):
            if not topics.exists(bootstrap, topic, timeout_s=args.connect_timeout, security=security):
                raise StreamError(topics.missing_topic_message(topic, bootstrap, "--topic"))

    def load_checked() -> list:   # at start and on each SIGHUP: a topic the file names must exist
        loaded = load_cameras(args.sources, shared)
        check_topics(loaded)
        return loaded

    if args.sources is not None:
        cameras = load_checked()
    else:
        cameras = [IngestOptions(source=args.source, camera_id=args.camera_id, password_env=args.source_password_env,
                                 password_file=args.source_password_file, **shared)]
        check_topics(cameras)
    metrics = IngestMetrics()
    server = None
    if args.metrics_port is not None:
        server = MetricsServer(metrics, port=args.metrics_port, host=args.metrics_bind, ready=metrics.ready,
                               alive=lambda: (True, "ok")).start()
    try:
        results = ingest_many(cameras, metrics=metrics, stop=threading.Event(), kafka=kafka,
                              progress=not args.no_progress, reload=load_checked if args.sources else None,
                              reload_now=reload_now)
    finally:
        if server is not None:
            server.stop()
    for r in results:
        s = r.stats
        state = "failed" if r.error else r.state or ("interrupted" if s.interrupted else "done")
        print(f"{r.camera_id}: {state}: {s.frames} frames in {s.batches} batches, {s.bytes / 1e6:.1f} MB, "
              f"{s.fps:.1f} fps" + (f", {s.dropped} dropped" if s.dropped else "")
              + (f", {s.reconnects} reconnects" if s.reconnects else "") + (f" ({redact_url(r.error)})" if r.error else ""))
    if any(r.stats.interrupted for r in results):
        raise Interrupted()
    failed = [r for r in results if r.error]
    if len(results) == 1 and failed:
        raise StreamError(f"camera {failed[0].camera_id}: {failed[0].error}")
    return 1 if failed else 0


def _config_sets_bootstrap(path: Path, overrides: list[str]) -> bool:
    """Whether the YAML file or a --set names kafka.bootstrap (else the built-in default applies)."""
    import yaml

    if any(o.split("=", 1)[0].strip() == "kafka.bootstrap" for o in overrides):
        return True
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return False   # load_config reports it
    return isinstance(doc, dict) and isinstance(doc.get("kafka"), dict) and "bootstrap" in doc["kafka"]


def _serve(args: argparse.Namespace) -> int:
    from stream.app.signals import record_stop_signals

    received = record_stop_signals()   # first: a SIGTERM from here on stops serve cleanly
    import dataclasses

    from soccerkd.config import load_config

    from stream.cli import Interrupted
    from stream.config import StreamConfig
    from stream.app.serve import serve

    overrides = list(args.overrides)
    if args.metrics_port is not None:
        overrides.append(f"metrics_port={args.metrics_port}")
    cfg = load_config(StreamConfig, args.config, overrides)
    explicit = cfg.kafka.bootstrap if _config_sets_bootstrap(args.config, overrides) else None
    bootstrap = resolve_bootstrap(args.bootstrap, explicit)
    cfg = dataclasses.replace(cfg, kafka=dataclasses.replace(cfg.kafka, bootstrap=bootstrap))
    outcome = serve(cfg, max_seconds=args.max_seconds, workers=args.workers, received=received)
    print("stopped: " + " ".join(f"{k}={v}" for k, v in outcome.counts.items()), flush=True)
    if outcome.interrupted:
        raise Interrupted()
    return 0


def _tail(args: argparse.Namespace) -> int:
    from stream.kafka import admin as topics
    from stream.cli import Interrupted
    from stream.errors import StreamError
    from stream.kafka.events import tail

    kafka, security = kafka_client(args)
    if not topics.exists(kafka.bootstrap, args.topic, timeout_s=args.connect_timeout, security=security):
        raise StreamError(topics.missing_topic_message(args.topic, kafka.bootstrap, "--topic"))
    _, interrupted = tail(kafka.bootstrap, args.topic, from_beginning=args.from_beginning, max_events=args.max_events,
                          timeout_s=args.timeout_s, isolation=args.isolation, as_json=args.json, security=security)
    if interrupted:
        raise Interrupted()
    return 0
