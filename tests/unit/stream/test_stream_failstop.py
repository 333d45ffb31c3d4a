"""Fail-stop delivery with fakes: after any failed publish, synchronous send error or processing
error, no commit happens on any path (periodic, final, revoke, close)."""

import threading
import time

import pytest
from prometheus_client import CollectorRegistry

from stream.app.metrics import Metrics
from stream.app.service import StreamService
from stream.config import StreamConfig
from stream.core.ledger import SourceRef
from stream.core.wire import encode_frame_batch
from stream.dev.testing import FakeFramesConsumer, FakeProducer, ScriptedPredictor, fake_kafka, solid_batch
from stream.kafka.publisher import PublishError

TP0, TP1 = ("frames", 0), ("frames", 1)
RED, BLUE = (230, 20, 20), (20, 20, 230)


def service(producer, *, transactional=False, **publisher_options):
    """A service with fake Kafka clients, partitions 0 and 1 assigned, and windows of one camera
    per partition (red then blue) waiting."""
    consumer = FakeFramesConsumer()
    svc = StreamService(StreamConfig(), predictor=ScriptedPredictor(), metrics=Metrics(CollectorRegistry()),
                        connect=fake_kafka(consumer, producer, transactional=transactional, **publisher_options))
    svc.connect()
    svc.subscribe()
    consumer.assign([TP0, TP1])
    for tp in (TP0, TP1):   # each partition: one camera, red then blue -> windows -> events
        for i, first in enumerate(range(0, 48, 4)):
            colour = RED if first < 24 else BLUE
            svc.pipeline.offer_bytes(encode_frame_batch(solid_batch(f"cam-{tp[1]}", first, [colour] * 4)),
                                     SourceRef(tp[0], tp[1], i))
    return svc


def publish_all(svc):
    svc.publish(svc.pipeline.drain())


def test_healthy_commits_go_out():
    producer = FakeProducer()
    svc = service(producer)
    publish_all(svc)
    assert ("events", b"cam-0") in producer.sent and ("events", b"cam-1") in producer.sent
    assert svc.delivery.commit() is True and svc.kafka.consumer.commits[-1][0] == "async"
    assert svc.delivery.commit(final=True) is True and svc.kafka.consumer.commits[-1][0] == "sync"


@pytest.mark.parametrize("producer", [FakeProducer(fail_topics={"events"}), FakeProducer(raise_topics={"events"})],
                         ids=["failed-delivery", "send-raised"])
def test_a_failed_event_publish_stops_every_later_commit(producer):
    svc = service(producer)
    try:
        publish_all(svc)
    except RuntimeError:
        pass   # a synchronous send error surfaces here; the publisher is poisoned either way
    with pytest.raises(PublishError):
        svc.delivery.commit()
    svc.kafka.consumer.revoke([TP0])            # revoke of one partition: no commit for it...
    with pytest.raises(PublishError):
        svc.delivery.commit()                  # ...and the kept partition still refuses (the failure is kept)
    with pytest.raises(PublishError):
        svc.delivery.commit(final=True)
    consumer = svc.kafka.consumer
    svc.close()                       # close fires revoke for the rest: still nothing
    assert svc.kafka is None and consumer.closed
    assert producer.sent == [] or all(t == "events" for t, _ in producer.sent)


def test_a_failed_dead_letter_stops_commits_too():
    producer = FakeProducer(fail_topics={"frames-dlq"})
    svc = service(producer)
    publish_all(svc)
    consumer = svc.kafka.consumer
    from stream.core.wire import BadMagicError

    svc.dead_letter(type("Rec", (), {"key": b"x", "value": b"junk"})(), SourceRef("frames", 0, 99), BadMagicError("x"))
    with pytest.raises(PublishError):
        svc.delivery.commit()
    svc.close()
    assert consumer.commits == []


def test_a_processing_error_poisons_the_publisher():
    svc = service(FakeProducer())
    publish_all(svc)
    consumer, publisher = svc.kafka.consumer, svc.kafka.publisher
    publisher.poison(ValueError("model blew up"))
    svc.close()
    assert consumer.commits == []
    with pytest.raises(PublishError, match="model blew up"):
        publisher.settle()


def test_revoke_runs_no_inference_and_commits_what_is_published():
    svc = service(FakeProducer())
    predictor = svc.predictor
    waiting = svc.pipeline.pending
    assert waiting > 0
    batches = len(predictor.batches)
    svc.kafka.consumer.revoke([TP0])
    assert len(predictor.batches) == batches               # no inference on the IO thread
    assert svc.kafka.consumer.commits and set(svc.kafka.consumer.commits[-1][1]) == {TP0}
    assert svc.pipeline.pending > 0 and all(w.camera_id != "cam-0" for _, _, w in svc.pipeline._pending)
    assert TP0 not in svc.delivery.assigned and TP1 in svc.delivery.assigned


def test_commit_failures_are_counted():
    svc = service(FakeProducer())
    svc.delivery.commit_failed(RuntimeError("coordinator moved"))
    assert svc.metrics.registry.get_sample_value("soccerkd_commit_failures_total") == 1.0


class FakeTxProducer(FakeProducer):
    """A transactional producer whose first offset commit is refused by a rebalance."""

    def __init__(self, refuse=1, error="IllegalGenerationError"):
        super().__init__()
        self.refuse, self.error = refuse, error

    def send_offsets_to_transaction(self, offsets, group_metadata):
        self.calls.append("offsets")
        if self.refuse:
            from kafka.errors import CommitFailedError

            self.refuse -= 1
            raise CommitFailedError(f"Transaction offset commit failed due to consumer group metadata mismatch: "
                                    f"{self.error}")


def tx_service(producer, **publisher_options):
    """An exactly-once service whose events are published into ``producer``'s open transaction."""
    svc = service(producer, transactional=True, **publisher_options)
    publish_all(svc)
    return svc


def test_a_transaction_refused_by_a_rebalance_is_aborted_and_the_partitions_rewound():
    producer = FakeTxProducer()
    svc = tx_service(producer)
    assert svc.delivery.commit() is False                                 # refused, aborted, rewound...
    assert producer.calls[-2:] == ["offsets", "abort"] and not svc.kafka.publisher.failed
    assert sorted(svc.kafka.consumer.rewinds) == [TP0, TP1] and svc.pipeline.pending == 0
    assert svc.kafka.consumer.rejoins == ["rejoin"]                   # ...with fresh group metadata
    svc.publish(svc.pipeline.drain())
    for tp in (TP0, TP1):   # the rewound partitions deliver again and commit in a fresh transaction
        svc.pipeline.offer_bytes(encode_frame_batch(solid_batch(f"cam-{tp[1]}", 48, [BLUE] * 4)),
                                 SourceRef(tp[0], tp[1], 3))
    assert svc.delivery.commit() is True and producer.calls[-3:] == ["begin", "offsets", "commit"]


def offer_more(svc, first, offset):
    for tp in (TP0, TP1):
        svc.pipeline.offer_bytes(encode_frame_batch(solid_batch(f"cam-{tp[1]}", first, [BLUE] * 4)),
                                 SourceRef(tp[0], tp[1], offset))
    svc.publish(svc.pipeline.drain())


def test_a_member_the_coordinator_no_longer_knows_rejoins_as_a_new_one_and_then_commits():
    """The paused-process case: the session expired, the coordinator forgot the member, and every
    transaction is refused with UnknownMemberId until the consumer joins again as a new member
    (on 5428071 it retried with the same metadata, 37 times in 90 s)."""
    producer = FakeTxProducer(refuse=2, error="UnknownMemberIdError")
    svc = tx_service(producer)
    assert svc.delivery.commit() is False
    offer_more(svc, 48, 3)
    assert svc.delivery.commit() is False
    assert svc.kafka.consumer.rejoins == ["new member", "new member"] and svc.delivery.aborts_in_a_row == 2
    offer_more(svc, 52, 4)
    assert svc.delivery.commit() is True and svc.delivery.aborts_in_a_row == 0


def test_transactions_refused_again_and_again_fail_stop_with_the_reason():
    from stream.app.delivery import MAX_ABORTS_IN_A_ROW
    from stream.errors import FailStop

    producer = FakeTxProducer(refuse=100, error="UnknownMemberIdError")
    svc = tx_service(producer)
    for i in range(MAX_ABORTS_IN_A_ROW):
        assert svc.delivery.commit() is False
        offer_more(svc, 48 + 4 * i, 3 + i)
    with pytest.raises(FailStop, match=r"6 transactions in a row were refused .*UnknownMemberIdError"):
        svc.delivery.commit()


def test_partitions_lost_in_a_transaction_abort_it_and_rewind_the_kept_ones():
    """Lost partitions (session expired) had outputs in the open transaction; so had the kept
    ones. On 5428071 the next commit published the kept ones' outputs with the lost ones' gone
    from the ledger; now the transaction is aborted on the main thread and the kept partitions
    are read again from their commit, dropping the poll's records of them."""
    producer = FakeTxProducer(refuse=0)
    svc = tx_service(producer)
    consumer = svc.kafka.consumer
    consumer.revoke([TP0], lost=True)                # on kafka-python's IO thread: only noted there
    assert "abort" not in producer.calls
    polled = [(SourceRef("frames", 1, 12), object())]
    assert svc.delivery.after_poll(polled) == []     # the kept partition's record is fetched again
    assert producer.calls[-1] == "abort" and consumer.rewinds == [TP1]
    assert svc.delivery.after_poll(polled) == polled  # once only


def test_a_refused_transaction_inside_a_revoke_fails_stop():
    producer = FakeTxProducer()
    svc = tx_service(producer)
    svc.kafka.consumer.revoke([TP0])   # the commit is refused on the IO thread: no seeks there, poison instead
    assert svc.kafka.publisher.failed and svc.kafka.consumer.rewinds == []
    with pytest.raises(PublishError):
        svc.delivery.commit()


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
        svc.delivery.commit()
    assert time.monotonic() - t0 < 3, "the commit must not wait for the wedged call"
    assert svc.kafka.publisher.failed
    with pytest.raises(PublishError):   # for good: no later commit (periodic, revoke, close) passes it
        svc.delivery.commit()
    t0 = time.monotonic()
    svc.kafka.publisher.close()   # bounded too: the abort of the wedged transaction gives up in time
    assert time.monotonic() - t0 < 3 and producer.closed
    producer.release.set()


@pytest.mark.parametrize("wedge", ["flush", "commit"])
def test_a_wedged_transaction_step_replaces_the_producer_and_rewinds_in_process(wedge):
    """kafka-python 3.0.12 waits for ever on a transaction coordinator that was SIGKILLed
    (benchmarks/repro_coordinator_failover.py). With a way to make a new transactional producer,
    the publisher replaces the wedged one (whose transaction the new one fences), the partitions
    are rewound to their commits, and the next transaction commits: no restart."""
    wedged, fresh = WedgedTxProducer(wedge), FakeTxProducer(refuse=0)
    made = []
    svc = tx_service(wedged, timeout_s=0.3, remake=lambda: made.append(fresh) or fresh)
    t0 = time.monotonic()
    assert svc.delivery.commit() is False                               # timed out, replaced, rewound
    assert time.monotonic() - t0 < 3 and made == [fresh] and wedged.closed
    publisher = svc.kafka.publisher
    assert publisher.producer is fresh and not publisher.failed and publisher.rebuilds == 1
    assert sorted(svc.kafka.consumer.rewinds) == [TP0, TP1] and svc.kafka.consumer.rejoins == []   # the group was fine
    assert svc.metrics.registry.get_sample_value("soccerkd_producer_rebuilds_total") == 1
    offer_more(svc, 48, 3)                       # the rewound partitions deliver again, into the new producer
    assert svc.delivery.commit() is True and fresh.calls[-3:] == ["begin", "offsets", "commit"]
    assert svc.delivery.aborts_in_a_row == 0
    wedged.release.set()


def test_a_producer_that_cannot_be_replaced_fails_stop():
    def remake():
        raise RuntimeError("no coordinator")

    wedged = WedgedTxProducer("commit")
    svc = tx_service(wedged, timeout_s=0.3, remake=remake)
    with pytest.raises(PublishError, match="making a new transactional producer failed too: RuntimeError"):
        svc.delivery.commit()
    assert svc.kafka.publisher.failed
    wedged.release.set()


def test_no_latency_is_made_up_from_a_skewed_capture_clock():
    svc = service(FakeProducer())
    now = svc.clock()
    assert abs(svc.latency(int((now - 2.0) * 1e9)) - 2.0) < 0.5
    assert svc.latency(int((now + 2 * 3600) * 1e9)) is None   # stamped two hours in the future


@pytest.mark.parametrize("wedge", ["flush", "commit"])
def test_a_revoke_blocks_the_io_thread_well_inside_the_session_timeout(wedge):
    """A revoke runs on kafka-python's IO thread, which also heartbeats. On 5428071 it could
    block for a settle of up to commit_timeout_s (30 s, three times the 10 s session timeout) and
    for a whole transaction commit. Each producer call in it now gives up after a quarter of the
    session timeout, and the service fails stop instead of silently losing its membership."""
    from stream.kafka.config import KafkaConfig

    producer = WedgedTxProducer(wedge)
    consumer = FakeFramesConsumer()
    cfg = StreamConfig(kafka=KafkaConfig(session_timeout_ms=2000, heartbeat_interval_ms=500))
    svc = StreamService(cfg, predictor=ScriptedPredictor(), metrics=Metrics(CollectorRegistry()),
                        connect=fake_kafka(consumer, producer, transactional=True))
    svc.connect()
    svc.subscribe()
    consumer.assign([TP0, TP1])
    svc.pipeline.offer_bytes(encode_frame_batch(solid_batch("cam-0", 0, [RED] * 8)), SourceRef(*TP0, 0))
    publish_all(svc)
    t0 = time.monotonic()
    consumer.revoke([TP0])
    assert time.monotonic() - t0 < 2.0 * 0.5 + 0.5, "the revoke outlasted its bound"
    assert svc.kafka.publisher.failed and svc.kafka.publisher.timeout_s == 30.0   # the bound was for the callback only
    with pytest.raises(PublishError):
        svc.delivery.commit()
    producer.release.set()
