"""A metadata request that hits a dead broker is asked again (stream.kafka.connection.partitions_for_topic)."""

from __future__ import annotations

import pytest
from kafka.errors import KafkaConnectionError


class FlakyConsumer:
    """partitions_for_topic fails ``failures`` times with the error kafka-python 3.0.12 raises
    when its metadata request went to a broker that was just killed."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    def partitions_for_topic(self, topic: str) -> set[int]:
        self.calls += 1
        if self.calls <= self.failures:
            raise KafkaConnectionError("111 ECONNREFUSED")
        return {0, 1, 2}


def test_a_dead_broker_in_the_metadata_is_asked_around():
    from stream.kafka.connection import partitions_for_topic

    clock = [0.0]
    consumer = FlakyConsumer(failures=3)
    found = partitions_for_topic(consumer, "frames", within_s=10, sleep=lambda s: clock.__setitem__(0, clock[0] + s),
                                 monotonic=lambda: clock[0])
    assert found == {0, 1, 2} and consumer.calls == 4


def test_it_gives_up_after_the_connect_timeout():
    from stream.kafka.connection import partitions_for_topic

    clock = [0.0]
    consumer = FlakyConsumer(failures=100)
    with pytest.raises(KafkaConnectionError):
        partitions_for_topic(consumer, "frames", within_s=2, sleep=lambda s: clock.__setitem__(0, clock[0] + s),
                             monotonic=lambda: clock[0])
    assert consumer.calls == 5   # at 0, 0.5, 1.0, 1.5 and 2.0 s


def test_the_frames_consumer_uses_it():
    from stream.kafka.config import KafkaConfig
    from stream.kafka.consumer import FramesConsumer

    frames = FramesConsumer(KafkaConfig(bootstrap="127.0.0.1:1", connect_timeout_s=5), consumer=FlakyConsumer(1))
    assert frames.topic_exists("frames")
