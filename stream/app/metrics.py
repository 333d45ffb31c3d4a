"""Prometheus metrics of the service and the ingester (registry injected); the HTTP endpoint that
serves them with the health probes is :mod:`stream.app.http`.

Labelled counters whose labels are known in advance (dead-letter and dropped-frame reasons) are
created at 0: a series that first appears with value 1 is invisible to ``increase()``/``rate()``,
so the first dead letter of a reason would never fire an alert.
"""

from __future__ import annotations

from typing import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from stream.core import epochs
from stream.core.cameras import DROP_REASONS, TIMESTAMP_ANOMALIES

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 20.0, 60.0)
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
STAGES = ("decode", "preprocess", "inference", "publish")
# Reasons the windowing rules count frames as dropped (stream.core.pipeline's _DROP_FIELDS).
# Label values come from the rules that produce them, so the lists never drift apart.
EPOCH_REASONS = epochs.REASONS


def envelope_reasons() -> tuple[str, ...]:
    """Every ``reason`` of :class:`stream.core.wire.EnvelopeError` and its subclasses, sorted.

    Read from the exception classes, so a new kind of envelope fault gets its zero series without
    a second list to keep in step.
    """
    from stream.core.wire import EnvelopeError

    seen: set[str] = set()
    todo: list[type] = [EnvelopeError]
    while todo:
        cls = todo.pop()
        seen.add(cls.reason)  # type: ignore[attr-defined]
        todo.extend(cls.__subclasses__())
    return tuple(sorted(seen))


class Metrics:
    """Every service metric, registered on ``registry`` (tests pass a fresh ``CollectorRegistry``)."""

    def __init__(self, registry: CollectorRegistry | None = None, *,
                 dlq_reasons: Iterable[str] | None = None,
                 drop_reasons: Iterable[str] = DROP_REASONS) -> None:
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
        for reason in EPOCH_REASONS:
            self.epochs.labels(reason=reason)
        self.fetch_stalls = Counter("soccerkd_fetch_stalls", "Partitions behind their end offset that made no "
                                    "progress for 15 s and had their fetch reset (a Kafka client fault)",
                                    registry=r)
        self.timestamp_anomalies = Counter(
            "soccerkd_timestamp_anomalies", "Frames whose capture time broke a rule: backwards (earlier than "
            "an earlier frame's; clamped to it) or clock_skew (over limits.max_clock_skew_s from the wall "
            "clock; kept, no latency observed)", ["kind"], registry=r)
        for kind in TIMESTAMP_ANOMALIES:
            self.timestamp_anomalies.labels(kind=kind)
        # Ownership: a group that assigns nothing, or an owner that died, leaves no lag series at
        # all, so the lag alerts cannot see it; these two can (alert SoccerKDNoPartitionsAssigned).
        self.assigned = Gauge("soccerkd_assigned_partitions", "Partitions of the topic this consumer owns now "
                              "(0 while the group gives it none)", ["topic"], registry=r)
        self.ready = Gauge("soccerkd_ready", "1 while /readyz answers 200 (model loaded, broker reachable, "
                           "partitions assigned), else 0", registry=r)
        self.commit_failures = Counter("soccerkd_commit_failures", "Offset commits the broker refused or "
                                       "that did not complete (each means a longer replay)", registry=r)
        self.producer_rebuilds = Counter("soccerkd_producer_rebuilds", "Transactional producers replaced in-process "
                                         "after a transaction step timed out (exactly-once)", registry=r)
        for stage in STAGES:
            self.stage.labels(stage=stage)
        for reason in (envelope_reasons() if dlq_reasons is None else dlq_reasons):
            self.dlq.labels(reason=reason)
        for reason in drop_reasons:
            self.dropped.labels(reason=reason)

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
    def event_published(self, label: str, latency_s: float | None) -> None:
        """``latency_s`` None: the frames' capture times are not to be trusted (clock skew)."""
        self.events.labels(label=label).inc()
        if latency_s is not None:
            self.event_latency.observe(max(0.0, latency_s))

    def add_idle_evictions(self, n: int) -> None:
        self.idle_evictions.inc(n)

    def add_epoch(self, reason: str) -> None:
        self.epochs.labels(reason=reason).inc()

    def add_timestamp_anomaly(self, kind: str, n: int) -> None:
        self.timestamp_anomalies.labels(kind=kind).inc(n)

    def fetch_stalled(self) -> None:
        self.fetch_stalls.inc()

    def commit_failed(self) -> None:
        self.commit_failures.inc()

    def producer_rebuilt(self) -> None:
        self.producer_rebuilds.inc()

    def dead_lettered(self, reason: str) -> None:
        self.dlq.labels(reason=reason).inc()

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        self.lag.labels(topic=topic, partition=str(partition)).set(lag)

    def set_assigned(self, topic: str, n: int) -> None:
        self.assigned.labels(topic=topic).set(n)

    def track_ready(self, ready: Callable[[], tuple[bool, str]]) -> None:
        """``soccerkd_ready`` asks ``ready`` (the ``/readyz`` callback) at every scrape."""
        self.ready.set_function(lambda: 1.0 if ready()[0] else 0.0)

    def forget_lag(self, topic: str, partition: int) -> None:
        """Drop a partition's lag series once it is no longer ours, so no stale value lingers."""
        try:
            self.lag.remove(topic, str(partition))
        except KeyError:
            pass

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


INGEST_STAGES = ("capture", "encode", "produce")
INGEST_OUTCOMES = ("sent", "dropped")


class IngestMetrics:
    """What ``soccerkd ingest`` exports (``--metrics-port``): frames sent and dropped, reconnects,
    measured source fps and whether each camera is up, and the time per stage of a frame."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry if registry is not None else CollectorRegistry()
        self.frames = Counter("soccerkd_ingest_frames", "Frames per camera and outcome: sent to Kafka, or "
                              "dropped by a live source's bounded buffer", ["camera", "outcome"], registry=r)
        self.reconnects = Counter("soccerkd_ingest_reconnects", "Times a live source was lost and reopened",
                                  ["camera"], registry=r)
        self.source_fps = Gauge("soccerkd_ingest_source_fps", "Frames per second captured, measured",
                                ["camera"], registry=r)
        self.up = Gauge("soccerkd_ingest_up", "1 while the camera delivers frames, 0 while its source is lost "
                        "or after it ended", ["camera"], registry=r)
        self.errors = Counter("soccerkd_ingest_errors", "Cameras stopped by an error of their source",
                              ["camera"], registry=r)
        self.stage = Histogram("soccerkd_ingest_stage_seconds", "Time per frame in each ingest stage",
                               ["stage"], registry=r, buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
                                                                0.1, 0.25, 0.5, 1.0))
        self.cameras = Gauge("soccerkd_ingest_cameras", "Cameras in the running set (ended ones included, "
                             "removed ones not)", registry=r)
        self.reloads = Counter("soccerkd_ingest_reloads", "Reloads of the cameras file (SIGHUP): applied, or "
                               "refused (the file did not load; the running set was kept)", ["outcome"], registry=r)
        self.camera_changes = Counter("soccerkd_ingest_camera_changes", "Cameras added, removed, or restarted "
                                      "(options changed) by a reload", ["change"], registry=r)
        for stage in INGEST_STAGES:
            self.stage.labels(stage=stage)
        for outcome in ("applied", "refused"):
            self.reloads.labels(outcome=outcome)
        for change in ("added", "removed", "restarted"):
            self.camera_changes.labels(change=change)

    def add_camera(self, camera: str) -> None:
        for outcome in INGEST_OUTCOMES:
            self.frames.labels(camera=camera, outcome=outcome)
        self.reconnects.labels(camera=camera)
        self.errors.labels(camera=camera)
        self.up.labels(camera=camera).set(0)
        self.source_fps.labels(camera=camera).set(0)

    def forget_camera(self, camera: str) -> None:
        """A removed camera is neither up nor down any more (readiness stops waiting for it); its
        counters stay, they are history."""
        for gauge in (self.up, self.source_fps):
            try:
                gauge.remove(camera)
            except KeyError:
                pass

    def cameras_down(self) -> list[str]:
        return sorted(s.labels["camera"] for m in self.up.collect() for s in m.samples if s.value == 0)

    def ready(self) -> tuple[bool, str]:
        down = self.cameras_down()
        return (False, f"camera(s) not connected: {', '.join(down)}") if down else (True, "every camera connected")

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def parse_metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Samples of a Prometheus text exposition: ``{(name, sorted label pairs): value}``."""
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return out
