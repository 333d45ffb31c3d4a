"""Prometheus metrics of the service (registry injected) and the HTTP endpoint with health probes.

``/metrics`` serves the registry in the text exposition format, ``/healthz`` answers 200 while
the process runs, ``/readyz`` answers 200 only when the readiness callback says so (partitions
assigned, model loaded, broker reachable) and 503 with the reason otherwise.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 20.0, 60.0)
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
STAGES = ("decode", "preprocess", "inference", "publish")


class Metrics:
    """Every service metric, registered on ``registry`` (tests pass a fresh ``CollectorRegistry``)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.event_latency = Histogram("soccerkd_event_latency_seconds",
                                       "Event publish (ack) time minus capture time of its newest frame",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.stage = Histogram("soccerkd_stage_seconds", "Time per pipeline stage call", ["stage"],
                               buckets=STAGE_BUCKETS, registry=r)
        self.batch_size = Histogram("soccerkd_batch_size", "Windows per inference batch",
                                    buckets=BATCH_BUCKETS, registry=r)
        self.frames = Counter("soccerkd_frames", "Frames received (decoded)", registry=r)
        self.windows = Counter("soccerkd_windows", "Windows run through the model", registry=r)
        self.events = Counter("soccerkd_events", "Action events published", ["label"], registry=r)
        self.dropped = Counter("soccerkd_dropped_frames", "Frames dropped or missing, by reason", ["reason"],
                               registry=r)
        self.dlq = Counter("soccerkd_dlq", "Messages sent to the dead-letter topic, by reason", ["reason"],
                           registry=r)
        self.lag = Gauge("soccerkd_consumer_lag", "High watermark minus position", ["topic", "partition"],
                         registry=r)
        self.inflight = Gauge("soccerkd_inflight_windows", "Windows complete and waiting for inference",
                              registry=r)
        self.idle_evictions = Counter("soccerkd_idle_evictions", "Cameras closed and evicted after "
                                      "windows.idle_timeout_s without frames", registry=r)
        self.epochs = Counter("soccerkd_stream_epochs", "New stream epochs of a camera, by reason "
                              "(fps_change, seq_jump, restart)", ["reason"], registry=r)
        self.commit_failures = Counter("soccerkd_commit_failures", "Offset commits the broker refused or "
                                       "that did not complete (each means a longer replay)", registry=r)
        for stage in STAGES:
            self.stage.labels(stage=stage)

    # PipelineMetrics protocol
    def observe_stage(self, stage: str, seconds: float) -> None:
        self.stage.labels(stage=stage).observe(seconds)

    def add_frames(self, n: int) -> None:
        self.frames.inc(n)

    def add_windows(self, n: int) -> None:
        self.windows.inc(n)

    def add_dropped(self, reason: str, n: int) -> None:
        self.dropped.labels(reason=reason).inc(n)

    def observe_batch(self, n: int) -> None:
        self.batch_size.observe(n)

    def set_inflight(self, n: int) -> None:
        self.inflight.set(n)

    # service-side
    def event_published(self, label: str, latency_s: float) -> None:
        self.events.labels(label=label).inc()
        self.event_latency.observe(max(0.0, latency_s))

    def add_idle_evictions(self, n: int) -> None:
        self.idle_evictions.inc(n)

    def add_epoch(self, reason: str) -> None:
        self.epochs.labels(reason=reason).inc()

    def commit_failed(self) -> None:
        self.commit_failures.inc()

    def dead_lettered(self, reason: str) -> None:
        self.dlq.labels(reason=reason).inc()

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        self.lag.labels(topic=topic, partition=str(partition)).set(lag)

    def forget_lag(self, topic: str, partition: int) -> None:
        """Drop a partition's lag series once it is no longer ours, so no stale value lingers."""
        try:
            self.lag.remove(topic, str(partition))
        except KeyError:
            pass

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MetricsServer:
    """Serves ``/metrics``, ``/healthz`` and ``/readyz`` on a background thread."""

    def __init__(self, metrics: Metrics, *, port: int, host: str = "0.0.0.0",
                 ready: Callable[[], tuple[bool, str]] = lambda: (True, "ok")) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, metrics.exposition(), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    self._send(200, b"ok\n")
                elif path == "/readyz":
                    ok, why = owner.ready()
                    self._send(200 if ok else 503, (why + "\n").encode())
                else:
                    self._send(404, b"not found\n")

            def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.ready = ready
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> "MetricsServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
