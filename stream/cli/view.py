"""``soccerkd view``: a live web page of a deployment, read from its frames and events topics."""

from __future__ import annotations

import argparse

from stream.cli.broker import add_kafka_arguments, kafka_client


def register(subparsers: argparse._SubParsersAction) -> None:
    view = subparsers.add_parser(
        "view", help="serve a live web page: each camera's latest frame with its label, the last events, "
                     "frames/s, windows/s, latency and the model in use",
        description="Follows the frames topic (the newest batch of each camera; only the newest JPEG is decoded, "
                    "at most --max-fps times a second per camera) and the events topic (read_committed), without "
                    "a consumer group and committing nothing, so it watches any deployment without touching it. "
                    "Open http://BIND:PORT/ : the page refreshes itself once a second and loads nothing from "
                    "elsewhere. frames/s comes from the frames topic, latency p50/p99 from the events of the last "
                    "minute (emitted_at minus the capture time of their newest frame), windows/s from the "
                    "soccerkd_windows_total counter of each --metrics-url (without one it is not shown). "
                    "/metrics, /healthz and /readyz answer on the same port.")
    add_kafka_arguments(view)
    view.add_argument("--connect-timeout", type=float, default=10.0, help="seconds to wait for the broker at start")
    view.add_argument("--frames-topic", default="frames", help="frames topic")
    view.add_argument("--events-topic", default="events", help="event topic")
    view.add_argument("--port", type=int, default=8090, help="port of the page; 0 picks a free one (printed)")
    view.add_argument("--bind", default="127.0.0.1", metavar="HOST",
                      help="address the page binds: the page shows camera pictures and has no login, so it "
                           "stays on this host unless you give 0.0.0.0 (a container, a trusted network)")
    view.add_argument("--metrics-url", dest="metrics_urls", action="append", default=[], metavar="URL",
                      help="a serve /metrics endpoint (http://HOST:PORT/metrics) to take windows/s from; "
                           "repeat for every serve process or pod, the rates add up")
    view.add_argument("--max-fps", type=float, default=4.0,
                      help="pictures decoded and annotated per camera and second, at most, however many watch")
    view.add_argument("--last-events", type=int, default=8, help="events listed per camera")
    view.add_argument("--max-seconds", type=float, default=None, help="stop by itself after this long")
    view.set_defaults(handler=_view)


def _view(args: argparse.Namespace) -> int:
    import signal
    import time

    from stream.app.signals import record_stop_signals
    from stream.app.view import LiveView
    from stream.cli import Interrupted
    from stream.errors import StreamError
    from stream.kafka import admin as topics

    for name, value in (("--max-fps", args.max_fps), ("--last-events", args.last_events)):
        if not value > 0:
            raise StreamError(f"{name} must be > 0, got {value!r}")
    if not 0 <= args.port < 65536:
        raise StreamError(f"--port must be 0..65535, got {args.port!r}")
    for url in args.metrics_urls:
        if not url.startswith(("http://", "https://")):
            raise StreamError(f"--metrics-url must be an http(s):// URL of a serve /metrics, got {url!r}")
    kafka, security = kafka_client(args, connect_timeout_s=args.connect_timeout)
    for topic, flag in ((args.frames_topic, "--frames-topic"), (args.events_topic, "--events-topic")):
        if not topics.exists(kafka.bootstrap, topic, timeout_s=args.connect_timeout, security=security):
            raise StreamError(topics.missing_topic_message(topic, kafka.bootstrap, flag))
    received = record_stop_signals()
    view = LiveView(bootstrap=kafka.bootstrap, frames_topic=args.frames_topic, events_topic=args.events_topic,
                    port=args.port, host=args.bind, security=security, metrics_urls=tuple(args.metrics_urls),
                    max_fps=args.max_fps, last_events=args.last_events).start()
    host = "[" + args.bind + "]" if ":" in args.bind else args.bind
    print(f"live page at http://{host}:{view.port}/ (frames: {args.frames_topic}, events: {args.events_topic}); "
          f"Ctrl-C stops", flush=True)
    deadline = None if args.max_seconds is None else time.monotonic() + args.max_seconds
    try:
        while not received and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.2)
    finally:
        view.stop()
    if signal.SIGINT in received:   # Ctrl-C: 130 like any interrupted tool; SIGTERM is a clean stop
        raise Interrupted()
    return 0
