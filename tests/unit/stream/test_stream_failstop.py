"""Fail-stop delivery with fakes: after any failed publish, synchronous send error or processing
error, no commit happens on any path (periodic, final, revoke, close)."""

import threading
import time

import pytest
from prometheus_client import CollectorRegistry

from stream.config import StreamConfig
from stream.metrics import Metrics
from stream.pipeline import SourceRef
from stream.publisher import Publisher, PublishError
from stream.service import StreamService
from stream.testing import ScriptedPredictor, solid_batch
from stream.messages import encode_frame_batch

TP0, TP1 = ("frames", 0), ("frames", 1)
RED, BLUE = (230, 20, 20), (20, 20, 230)


class FakeFuture:
    def __init__(self, error=None):
        self.exception = error
        self.is_done = True

    def failed(self):
        return self.exception is not None

    def add_callback(self, fn):
        if self.exception is None:
            fn(None)
        return self


class FakeProducer:
    """``fail_topics``: sends to these fail asynchronously; ``raise_topics``: ``send`` raises."""

    def __init__(self, fail_topics=(), raise_topics=()):
        self.fail_topics, self.raise_topics = set(fail_topics), set(raise_topics)
        self.sent = []

    def send(self, topic, *, key, value, headers=None):
        if topic in self.raise_topics:
            raise RuntimeError(f"send to {topic} raised")
        self.sent.append((topic, key))
        return FakeFuture(RuntimeError("delivery failed") if topic in self.fail_topics else None)

    def flush(self, timeout=None):
        pass

    def close(self, timeout=None):
        self.closed = True


class FakeConsumer:
    def __init__(self, service):
        self.service = service
        self.commits = []

    def commit_async(self, offsets, callback=None):
        self.commits.append(("async", {(tp.topic, tp.partition): om.offset for tp, om in offsets.items()}))

    def commit(self, offsets):
        self.commits.append(("sync", {(tp.topic, tp.partition): om.offset for tp, om in offsets.items()}))

    def close(self, autocommit=False):   # kafka-python fires on_partitions_revoked on close
        self.service._on_revoked(sorted(self.service._assigned))

    def assignment(self):
        return set()


def service(producer):
    svc = StreamService(StreamConfig(), predictor=ScriptedPredictor(), metrics=Metrics(CollectorRegistry()))
    svc._producer = producer
    svc._publisher = Publisher(producer)
    svc._consumer = FakeConsumer(svc)
    svc._assigned.update({TP0, TP1})
    for tp in (TP0, TP1):   # each partition: one camera, red then blue -> windows -> events
        for i, first in enumerate(range(0, 48, 4)):
            colour = RED if first < 24 else BLUE
            svc.pipeline.offer_bytes(encode_frame_batch(solid_batch(f"cam-{tp[1]}", first, [colour] * 4)),
                                     SourceRef(tp[0], tp[1], i))
    return svc


def publish_all(svc):
    svc._publish(svc.pipeline.drain())


def test_healthy_commits_go_out():
    producer = FakeProducer()
    svc = service(producer)
    publish_all(svc)
    assert ("events", b"cam-0") in producer.sent and ("events", b"cam-1") in producer.sent
    assert svc.commit() is True and svc._consumer.commits[-1][0] == "async"
    assert svc.commit(final=True) is True and svc._consumer.commits[-1][0] == "sync"


@pytest.mark.parametrize("producer", [FakeProducer(fail_topics={"events"}), FakeProducer(raise_topics={"events"})],
                         ids=["failed-delivery", "send-raised"])
def test_a_failed_event_publish_stops_every_later_commit(producer):
    svc = service(producer)
    try:
        publish_all(svc)
    except RuntimeError:
        pass   # a synchronous send error surfaces here; the publisher is poisoned either way
    with pytest.raises(PublishError):
        svc.commit()
    svc._on_revoked([TP0])            # revoke of one partition: no commit for it...
    with pytest.raises(PublishError):
        svc.commit()                  # ...and the kept partition still refuses (the failure is kept)
    with pytest.raises(PublishError):
        svc.commit(final=True)
    svc.close()                       # close fires revoke for the rest: still nothing
    assert svc._consumer is None
    assert producer.sent == [] or all(t == "events" for t, _ in producer.sent)


def test_a_failed_dead_letter_stops_commits_too():
    producer = FakeProducer(fail_topics={"frames-dlq"})
    svc = service(producer)
    publish_all(svc)
    consumer = svc._consumer
    from stream.messages import BadMagicError

    svc._dead_letter(type("Rec", (), {"key": b"x", "value": b"junk"})(), SourceRef("frames", 0, 99), BadMagicError("x"))
    with pytest.raises(PublishError):
        svc.commit()
    svc.close()
    assert consumer.commits == []


def test_a_processing_error_poisons_the_publisher():
    svc = service(FakeProducer())
    publish_all(svc)
    consumer = svc._consumer
    svc._publisher.poison(ValueError("model blew up"))
    svc.close()
    assert consumer.commits == []
    with pytest.raises(PublishError, match="model blew up"):
        svc._publisher.settle()


def test_revoke_runs_no_inference_and_commits_what_is_published():
    svc = service(FakeProducer())
    predictor = svc.predictor
    waiting = svc.pipeline.pending
    assert waiting > 0
    batches = len(predictor.batches)
    svc._on_revoked([TP0])
    assert len(predictor.batches) == batches               # no inference on the IO thread
    assert svc._consumer.commits and set(svc._consumer.commits[-1][1]) == {TP0}
    assert svc.pipeline.pending > 0 and all(w.camera_id != "cam-0" for _, _, w in svc.pipeline._pending)
    assert TP0 not in svc._assigned and TP1 in svc._assigned


def test_commit_failures_are_counted():
    svc = service(FakeProducer())
    svc._commit_failed(RuntimeError("coordinator moved"))
    assert svc.metrics.registry.get_sample_value("soccerkd_commit_failures_total") == 1.0


class FakeTxProducer(FakeProducer):
    """A transactional producer whose first offset commit is refused by a rebalance."""

    def __init__(self):
        super().__init__()
        self.calls = []
        self.refuse = 1

    def begin_transaction(self):
        self.calls.append("begin")

    def send_offsets_to_transaction(self, offsets, group_metadata):
        self.calls.append("offsets")
        if self.refuse:
            from kafka.errors import CommitFailedError

            self.refuse -= 1
            raise CommitFailedError("consumer group metadata mismatch: IllegalGenerationError")

    def commit_transaction(self):
        self.calls.append("commit")

    def abort_transaction(self):
        self.calls.append("abort")


class SeekingConsumer(FakeConsumer):
    def __init__(self, service):
        super().__init__(service)
        self.seeks = []

    def group_metadata(self):
        return "g"

    def committed(self, tp):
        return 3

    def seek(self, tp, offset):
        self.seeks.append(((tp.topic, tp.partition), offset))


def tx_service(producer, **publisher_options):
    """An exactly-once service whose events are published into ``producer``'s open transaction."""
    svc = service(producer)
    svc._publisher = Publisher(producer, transactional=True, **publisher_options)
    svc._consumer = SeekingConsumer(svc)
    publish_all(svc)
    return svc


def test_a_transaction_refused_by_a_rebalance_is_aborted_and_the_partitions_rewound():
    producer = FakeTxProducer()
    svc = tx_service(producer)
    assert svc.commit() is False                                 # refused, aborted, rewound...
    assert producer.calls[-2:] == ["offsets", "abort"] and not svc._publisher.failed
    assert sorted(svc._consumer.seeks) == [(TP0, 3), (TP1, 3)] and svc.pipeline.pending == 0
    assert sorted(svc._new) == [TP0, TP1]                         # ...their resume points re-read
    svc._publish(svc.pipeline.drain())
    svc._consumer.service = svc
    for tp in (TP0, TP1):   # the rewound partitions deliver again and commit in a fresh transaction
        svc.pipeline.offer_bytes(encode_frame_batch(solid_batch(f"cam-{tp[1]}", 48, [BLUE] * 4)),
                                 SourceRef(tp[0], tp[1], 3))
    assert svc.commit() is True and producer.calls[-3:] == ["begin", "offsets", "commit"]


def test_a_refused_transaction_inside_a_revoke_fails_stop():
    producer = FakeTxProducer()
    svc = tx_service(producer)
    svc._on_revoked([TP0])   # the commit is refused on the IO thread: no seeks there, poison instead
    assert svc._publisher.failed and svc._consumer.seeks == []
    with pytest.raises(PublishError):
        svc.commit()


class WedgedTxProducer(FakeTxProducer):
    """A producer whose flush or transaction commit never returns (a coordinator that never
    answers, or a step retried until a group that waits for this very member settles)."""

    def __init__(self, wedge):
        super().__init__()
        self.refuse, self.wedge, self.release = 0, wedge, threading.Event()

    def flush(self, timeout=None):
        if self.wedge == "flush":
            self.release.wait()

    def commit_transaction(self):
        self.calls.append("commit")
        if self.wedge == "commit":
            self.release.wait()


@pytest.mark.parametrize("wedge", ["flush", "commit"])
def test_a_wedged_producer_call_fails_stop_within_the_commit_timeout(wedge):
    producer = WedgedTxProducer(wedge)
    svc = tx_service(producer, timeout_s=0.3)
    t0 = time.monotonic()
    with pytest.raises(PublishError, match="did not finish within 0.3 s"):
        svc.commit()
    assert time.monotonic() - t0 < 3, "the commit must not wait for the wedged call"
    assert svc._publisher.failed
    with pytest.raises(PublishError):   # for good: no later commit (periodic, revoke, close) passes it
        svc.commit()
    t0 = time.monotonic()
    svc._publisher.close()   # bounded too: the abort of the wedged transaction gives up in time
    assert time.monotonic() - t0 < 3 and producer.closed
    producer.release.set()


def test_no_latency_is_made_up_from_a_skewed_capture_clock():
    svc = service(FakeProducer())
    now = svc.clock()
    assert abs(svc._latency(int((now - 2.0) * 1e9)) - 2.0) < 0.5
    assert svc._latency(int((now + 2 * 3600) * 1e9)) is None   # stamped two hours in the future
