"""The fetch watchdog: a partition behind its end offset that does not move between two checks
has its fetch reset (a seek to its position), and it is counted; still stuck at the next check,
the service fails stop; a moving, caught-up or paused one is left alone."""

import pytest

from stream.dev.testing import FakeFramesConsumer
from stream.errors import FailStop
from stream.kafka.watchdog import FetchWatchdog

P0, P1 = ("frames", 0), ("frames", 1)


def test_a_stuck_partition_is_refetched_and_counted():
    consumer, stalls = FakeFramesConsumer(), []
    consumer.progress = {P0: (10, 50), P1: (5, 5)}    # (position, end); a paused partition is not listed
    dog = FetchWatchdog(consumer, on_stall=lambda: stalls.append(1))
    dog.check(judge=True)                             # first look: nothing to compare with
    assert consumer.resets == []
    dog.check(judge=True)                             # P0 did not move; P1 is caught up: not stuck
    assert consumer.resets == [(P0, 10)] and len(stalls) == 1
    consumer.progress[P0] = (30, 50)                  # it moves again: left alone
    dog.check(judge=True)
    assert consumer.resets == [(P0, 10)]
    consumer.progress = {P0: (50, 50), P1: (3, 5)}    # P1 rewound behind its end, then stuck: reset, then...
    dog.check(judge=True)
    dog.check(judge=True)
    assert consumer.resets[-1] == (P1, 3) and len(consumer.resets) == 2
    with pytest.raises(FailStop, match=r"stopped fetching frames\[1\] at offset 3 \(end 5\)"):
        dog.check(judge=True)                         # ...still stuck: fail stop for a fresh client


def test_a_busy_service_is_not_judged():
    """Records keep arriving (from another partition, say): a partition waiting behind them is slow,
    not stuck, and nothing is reset."""
    consumer = FakeFramesConsumer()
    consumer.progress = {P0: (10, 50)}
    dog = FetchWatchdog(consumer)
    for _ in range(4):
        dog.check(judge=False)
    assert consumer.resets == []


def test_a_partition_whose_position_is_unknown_is_not_judged():
    """kafka-python answers ``position(timeout_ms=0)`` with None for a partition whose position is
    not known yet (just assigned, or rewound after a revoke). On 5428071 the watchdog compared
    ``end > None`` and serve died with "unexpected TypeError: '>' not supported between
    instances of 'int' and 'NoneType'"."""
    from kafka.structs import TopicPartition as KTP

    from stream.kafka.config import KafkaConfig
    from stream.kafka.consumer import FramesConsumer

    class Client:   # the kafka-python calls fetch_progress makes
        def assignment(self):
            return {KTP("frames", 0), KTP("frames", 1)}

        def paused(self):
            return set()

        def end_offsets(self, parts, timeout_ms=None):
            return {p: 10 for p in parts}

        def position(self, part, timeout_ms=None):
            return None if part.partition == 0 else 4

        def seek(self, part, offset):
            self.seeks.append((part.partition, offset))

    client = Client()
    client.seeks = []
    consumer = FramesConsumer(KafkaConfig(), consumer=client)
    assert consumer.fetch_progress() == {("frames", 1): (4, 10)}
    dog = FetchWatchdog(consumer)
    dog.check(judge=True)
    dog.check(judge=True)   # partition 1 did not move: reset (a seek on the client), no TypeError
    assert client.seeks == [(1, 4)]
