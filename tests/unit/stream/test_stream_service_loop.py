"""Service wiring without Kafka: backpressure pauses and resumes, readiness, metrics names."""

from prometheus_client import CollectorRegistry

from stream.app.metrics import Metrics
from stream.app.service import StreamService
from stream.config import BatchingConfig, StreamConfig
from stream.core.ledger import SourceRef
from stream.core.wire import encode_frame_batch
from stream.dev.testing import FakeFramesConsumer, ScriptedPredictor, fake_kafka, solid_batch


def service(cfg=StreamConfig(), metrics=None):
    svc = StreamService(cfg, predictor=ScriptedPredictor(), metrics=metrics or Metrics(CollectorRegistry()),
                        connect=fake_kafka(FakeFramesConsumer()))
    svc.connect()
    svc.subscribe()
    return svc


def test_backpressure_pauses_when_windows_pile_up_and_resumes_after_drain():
    cfg = StreamConfig(batching=BatchingConfig(max_batch=2, max_wait_ms=0, max_pending_windows=6,
                                               resume_pending_windows=2))
    svc = service(cfg)
    consumer = svc.kafka.consumer
    for i, first in enumerate(range(0, 40, 4)):
        svc.pipeline.offer_bytes(encode_frame_batch(solid_batch("c", first, [(9, 9, 9)] * 4)),
                                 SourceRef("frames", 0, i))
    assert svc.pipeline.pending >= 6
    svc.backpressure()
    assert consumer.paused and consumer.pauses == ["pause"]
    svc.backpressure()
    assert consumer.pauses == ["pause"]  # no repeated pause
    while svc.pipeline.pending > 2:
        svc.pipeline.step(force=True)
        svc.backpressure()
    assert not consumer.paused and consumer.pauses == ["pause", "resume"]


def test_readiness_reasons():
    svc = service()
    svc.kafka.consumer.reachable = False
    svc.check_broker()
    assert svc.ready() == (False, "broker not reachable")
    svc.kafka.consumer.reachable = True
    svc.check_broker()
    assert svc.ready() == (False, "no partitions assigned")
    svc.kafka.consumer.assign([("frames", 0)])
    assert svc.ready() == (True, "ready")


def test_metric_names_match_the_issue():
    m = Metrics(CollectorRegistry())
    m.event_published("kick", 0.3)
    m.dead_lettered("bad_magic")
    m.add_dropped("gap", 2)
    m.set_lag("frames", 0, 5)
    m.observe_batch(4)
    m.observe_stage("decode", 0.01)
    m.add_frames(3)
    m.add_windows(1)
    m.set_inflight(2)
    text = m.exposition().decode()
    for name in ("soccerkd_event_latency_seconds_bucket", 'soccerkd_stage_seconds_bucket{le="0.0005",stage="decode"}',
                 'soccerkd_stage_seconds_count{stage="publish"}', "soccerkd_batch_size_bucket",
                 "soccerkd_frames_total 3.0", "soccerkd_windows_total 1.0", 'soccerkd_events_total{label="kick"} 1.0',
                 'soccerkd_dropped_frames_total{reason="gap"} 2.0', 'soccerkd_dlq_total{reason="bad_magic"} 1.0',
                 'soccerkd_consumer_lag{partition="0",topic="frames"} 5.0', "soccerkd_inflight_windows 2.0"):
        assert name in text, name


def test_revoked_or_lost_partitions_stop_exporting_lag():
    metrics = Metrics(CollectorRegistry())
    svc = service(metrics=metrics)
    svc.kafka.consumer.assign([("frames", 0), ("frames", 1)])
    svc.kafka.consumer.lags = {("frames", 0): 5, ("frames", 1): 7}
    svc.delivery.update_lag()
    svc.kafka.consumer.revoke([("frames", 1)], lost=True)
    text = metrics.exposition().decode()
    assert 'soccerkd_consumer_lag{partition="0",topic="frames"} 5.0' in text
    assert 'partition="1"' not in text
    metrics.forget_lag("frames", 9)  # never exported: a no-op, not an error


def test_every_output_topic_is_checked_at_start_and_a_missing_one_named(caplog):
    """On 5428071 only the frames topic was checked: a missing events topic hung in send() for
    60 s, then 'unexpected KafkaTimeoutError' naming no topic, on every restart. Now serve waits
    for it like for the frames topic, with one line and /readyz naming it."""
    import logging
    import threading
    import time

    logging.getLogger("soccerkd.serve").addHandler(caplog.handler)   # whatever propagation logs.configure set
    consumer = FakeFramesConsumer()
    consumer.missing_topics = {"events"}
    svc = StreamService(StreamConfig(), predictor=ScriptedPredictor(), connect=fake_kafka(consumer))
    thread = threading.Thread(target=svc.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while svc.ready() != (False, "topic 'events' missing"):
            assert time.monotonic() < deadline, svc.ready()
            time.sleep(0.02)
        assert "topic 'events' (kafka.events_topic) does not exist" in caplog.text
        assert consumer._listener == {}   # not subscribed while an output topic is missing
        consumer.missing_topics.clear()
        while not consumer._listener:
            assert time.monotonic() < deadline, "serve did not start once the topic existed"
            time.sleep(0.02)
    finally:
        svc.stop()
        thread.join(10)
        logging.getLogger("soccerkd.serve").removeHandler(caplog.handler)
    assert not thread.is_alive()


def test_assigned_partitions_and_ready_gauges_follow_the_assignment():
    """The ownership signal: the count of owned partitions (0 before the group assigns any, and
    again once they are revoked or lost) and the /readyz answer, read back from a fresh registry."""
    registry = CollectorRegistry()
    svc = service(metrics=Metrics(registry))
    consumer = svc.kafka.consumer

    def value(name, **labels):
        return registry.get_sample_value(name, labels)

    assert value("soccerkd_assigned_partitions", topic="frames") == 0.0
    consumer.reachable = False
    svc.check_broker()
    assert value("soccerkd_ready") == 0.0
    consumer.reachable = True
    svc.check_broker()
    assert value("soccerkd_ready") == 0.0   # reachable, but nothing assigned yet
    consumer.assign([("frames", 0), ("frames", 2)])
    assert value("soccerkd_assigned_partitions", topic="frames") == 2.0
    assert value("soccerkd_ready") == 1.0
    consumer.revoke([("frames", 2)], lost=True)
    assert value("soccerkd_assigned_partitions", topic="frames") == 1.0
    consumer.revoke([("frames", 0)])
    assert value("soccerkd_assigned_partitions", topic="frames") == 0.0
    assert value("soccerkd_ready") == 0.0 and svc.ready() == (False, "no partitions assigned")
