"""The autoscaling signal on the real broker: a service that has read everything shows no
backlog (soccerkd_consumer_lag 0, no windows waiting) while the group's committed offsets still
trail by the open-segment hold-back, which is what KEDA's kafka scaler would have scaled on."""

from __future__ import annotations

import threading
import time

import pytest
from kafka_setup import fresh_kafka_config, serving
from prometheus_client import CollectorRegistry

from stream.config import BatchingConfig, StreamConfig
from stream.core.smoothing import SmoothingConfig
from stream.core.windowing import WindowConfig

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_caught_up_service_has_no_backlog_although_committed_offsets_trail(kafka_broker):
    from kafka import KafkaConsumer, TopicPartition

    from stream.kafka.connection import make_producer
    from stream.core.wire import encode_frame_batch
    from stream.app.metrics import Metrics
    from stream.app.compose import build_service
    from stream.dev.testing import ScriptedPredictor, solid_batch

    # The ConfigMap's stride and segment cap: one long action keeps a segment open for up to
    # 64 windows x 4 frames, and the commit point stays at its start.
    cfg = StreamConfig(
        kafka=fresh_kafka_config(kafka_broker, "scale"),
        windows=WindowConfig(window_stride=4, reorder_tolerance=0, max_fill=0),
        smoothing=SmoothingConfig(on_threshold=0.6, off_threshold=0.4, min_windows=2, max_windows=64),
        batching=BatchingConfig(max_batch=16, max_wait_ms=20, max_pending_windows=128, resume_pending_windows=32),
        log_every_s=1.0)
    producer = make_producer(cfg.kafka)
    messages = 60
    for i in range(messages):  # 480 red frames of one camera, 8 per message
        producer.send(cfg.kafka.frames_topic, key=b"cam", value=encode_frame_batch(solid_batch("cam", i * 8, [(220, 10, 10)] * 8)))
    producer.flush()
    producer.close()
    registry = CollectorRegistry()
    service = build_service(cfg, predictor=ScriptedPredictor(), metrics=Metrics(registry))
    lag = {"topic": cfg.kafka.frames_topic, "partition": "0"}
    tp = TopicPartition(cfg.kafka.frames_topic, 0)
    reader = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap, group_id=cfg.kafka.group_id,
                           enable_auto_commit=False)

    def caught_up() -> bool:
        return ((registry.get_sample_value("soccerkd_windows_total") or 0) >= 119
                and registry.get_sample_value("soccerkd_consumer_lag", lag) == 0 and reader.committed(tp) is not None)

    try:
        with serving(service, until=caught_up, what="the service did not catch up"):
            time.sleep(1.0)  # a few more commit intervals: the committed offset has settled
            committed_lag = reader.end_offsets([tp])[tp] - reader.committed(tp)
            backlog_messages = registry.get_sample_value("soccerkd_consumer_lag", lag)
            backlog_windows = registry.get_sample_value("soccerkd_inflight_windows")
            # The ownership signal from a real group: one partition owned, and ready.
            owned = registry.get_sample_value("soccerkd_assigned_partitions", {"topic": cfg.kafka.frames_topic})
            ready = registry.get_sample_value("soccerkd_ready")
    finally:
        reader.close()
    print(f"\n[autoscale] caught up: committed-offset lag {committed_lag} messages, "
          f"messages behind {backlog_messages:g}, windows waiting {backlog_windows:g}")
    assert backlog_messages == 0 and backlog_windows == 0
    assert (owned, ready) == (1.0, 1.0)
    assert registry.get_sample_value("soccerkd_assigned_partitions", {"topic": cfg.kafka.frames_topic}) == 0.0, \
        "after close the service owns nothing"
    # KEDA's kafka scaler at lagThreshold 25 would have asked for a second replica here.
    assert committed_lag > 25


def test_lag_keeps_counting_while_partitions_are_paused(kafka_broker):
    """Backpressure pauses the partitions, after which the client fetches nothing and its high
    watermark freezes. The lag gauge must still grow with what the cameras produce meanwhile."""
    from stream.app.compose import build_service
    from stream.app.metrics import Metrics
    from stream.core.wire import encode_frame_batch
    from stream.dev.testing import ScriptedPredictor, solid_batch
    from stream.kafka.connection import make_producer

    cfg = StreamConfig(
        kafka=fresh_kafka_config(kafka_broker, "paused", commit_interval_ms=200, max_poll_records=2),
        windows=WindowConfig(window_stride=2, reorder_tolerance=0, max_fill=0),
        smoothing=SmoothingConfig(on_threshold=0.6, off_threshold=0.4, min_windows=2, max_windows=8),
        batching=BatchingConfig(max_batch=1, max_wait_ms=0, max_pending_windows=8, resume_pending_windows=1),
        log_every_s=1.0)
    slow = threading.Event()
    slow.set()

    def script(_window):
        if slow.is_set():   # a slow model: the windows pile up and the partitions are paused
            time.sleep(0.4)
        return (1.0, 0.0)

    producer = make_producer(cfg.kafka)

    def produce(first: int, n: int) -> None:
        for i in range(first, first + n):
            producer.send(cfg.kafka.frames_topic, key=b"cam",
                          value=encode_frame_batch(solid_batch("cam", i * 8, [(220, 10, 10)] * 8)))
        producer.flush()

    before = 20
    produce(0, before)
    registry = CollectorRegistry()
    service = build_service(cfg, predictor=ScriptedPredictor(script), metrics=Metrics(registry))
    lag = {"topic": cfg.kafka.frames_topic, "partition": "0"}

    def inflight() -> float:
        return registry.get_sample_value("soccerkd_inflight_windows") or 0.0

    seen: list[tuple[float | None, bool]] = []
    try:
        # Paused from the moment max_pending_windows windows wait.
        with serving(service, until=lambda: inflight() >= cfg.batching.max_pending_windows,
                     what="the service never paused its partition"):
            produce(before, 30)   # the cameras go on while the partition is paused
            deadline = time.monotonic() + 30
            while True:
                value = registry.get_sample_value("soccerkd_consumer_lag", lag)
                still_paused = inflight() > cfg.batching.resume_pending_windows
                seen.append((value, still_paused))
                if value is not None and value > before:
                    break
                assert still_paused and time.monotonic() < deadline, (
                    f"the lag gauge stayed at {value} (<= {before}, the high watermark before the pause) "
                    f"while paused: {seen[-5:]}")
                time.sleep(0.1)
            slow.clear()
    finally:
        slow.clear()
        producer.close()
    print(f"\n[paused] lag gauge {value:g} while paused ({len(seen)} reads); {before} messages before the pause, "
          f"30 produced during it")
    assert still_paused, "the gauge moved only after the partition was resumed"
