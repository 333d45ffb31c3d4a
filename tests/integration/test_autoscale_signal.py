"""The autoscaling signal on the real broker: a service that has read everything shows no
backlog (soccerkd_consumer_lag 0, no windows waiting) while the group's committed offsets still
trail by the open-segment hold-back, which is what KEDA's kafka scaler would have scaled on."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from prometheus_client import CollectorRegistry

from stream.config import BatchingConfig, StreamConfig
from stream.kafka.config import KafkaConfig
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

    uid = uuid.uuid4().hex[:8]
    names = {k: f"scale-{k}-{uid}" for k in ("frames", "events", "dlq")}
    for name in names.values():
        kafka_broker.create_topic(name, partitions=1)
    # The ConfigMap's stride and segment cap: one long action keeps a segment open for up to
    # 64 windows x 4 frames, and the commit point stays at its start.
    cfg = StreamConfig(
        kafka=KafkaConfig(bootstrap=kafka_broker.bootstrap, frames_topic=names["frames"], events_topic=names["events"],
                          dlq_topic=names["dlq"], group_id=f"scale-{uid}", commit_interval_ms=300,
                          session_timeout_ms=6000, heartbeat_interval_ms=1000),
        windows=WindowConfig(window_stride=4, reorder_tolerance=0, max_fill=0),
        smoothing=SmoothingConfig(on_threshold=0.6, off_threshold=0.4, min_windows=2, max_windows=64),
        batching=BatchingConfig(max_batch=16, max_wait_ms=20, max_pending_windows=128, resume_pending_windows=32),
        log_every_s=1.0)
    producer = make_producer(cfg.kafka)
    messages = 60
    for i in range(messages):  # 480 red frames of one camera, 8 per message
        producer.send(names["frames"], key=b"cam", value=encode_frame_batch(solid_batch("cam", i * 8, [(220, 10, 10)] * 8)))
    producer.flush()
    producer.close()
    registry = CollectorRegistry()
    service = build_service(cfg, predictor=ScriptedPredictor(), metrics=Metrics(registry))
    thread = threading.Thread(target=service.run, name="serve", daemon=True)
    thread.start()
    lag = {"topic": names["frames"], "partition": "0"}
    tp = TopicPartition(names["frames"], 0)
    reader = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap, group_id=cfg.kafka.group_id,
                           enable_auto_commit=False)
    try:
        deadline = time.monotonic() + 60
        while True:
            committed = reader.committed(tp)
            caught_up = (registry.get_sample_value("soccerkd_windows_total") or 0) >= 119 and \
                registry.get_sample_value("soccerkd_consumer_lag", lag) == 0 and committed is not None
            if caught_up:
                break
            assert time.monotonic() < deadline, "the service did not catch up"
            time.sleep(0.3)
        time.sleep(1.0)  # a few more commit intervals: the committed offset has settled
        committed = reader.committed(tp)
        committed_lag = reader.end_offsets([tp])[tp] - committed
        backlog_messages = registry.get_sample_value("soccerkd_consumer_lag", lag)
        backlog_windows = registry.get_sample_value("soccerkd_inflight_windows")
    finally:
        reader.close()
        service.stop()
        thread.join(30)
    print(f"\n[autoscale] caught up: committed-offset lag {committed_lag} messages, "
          f"messages behind {backlog_messages:g}, windows waiting {backlog_windows:g}")
    assert backlog_messages == 0 and backlog_windows == 0
    # KEDA's kafka scaler at lagThreshold 25 would have asked for a second replica here.
    assert committed_lag > 25
