"""FramesConsumer over a stub of kafka-python's consumer: what it asks of the broker, and when."""

from __future__ import annotations

from kafka.structs import TopicPartition as KTP

from stream.kafka.config import KafkaConfig
from stream.kafka.consumer import FramesConsumer

P0 = KTP("frames", 0)


class Client:
    """The kafka-python calls ``lag`` makes, counting the broker requests."""

    def __init__(self):
        self.asked, self.rebalancing = 0, False
        self._coordinator = self   # group_busy reads the coordinator's state

    def coordinator_unknown(self):
        return False

    def rebalance_in_progress(self):
        return self.rebalancing

    def need_rejoin(self):
        return False

    def assignment(self):
        return {P0}

    def paused(self):
        return {P0}

    def end_offsets(self, parts, timeout_ms=None):
        self.asked += 1
        return {p: 50 for p in parts}

    def highwater(self, part):
        return 20

    def position(self, part, timeout_ms=None):
        return 10


def test_paused_lag_is_asked_of_the_broker_at_most_once_a_second_and_never_in_a_rebalance():
    """kafka-python serves ListOffsets on its IO thread. Asked every commit interval while the
    partitions were paused, it starved a cooperative rebalance that then never finished (CI)."""
    client, now = Client(), [100.0]
    consumer = FramesConsumer(KafkaConfig(), consumer=client, monotonic=lambda: now[0])
    assert consumer.lag() == {("frames", 0): 40} and client.asked == 1   # the broker's end, not the frozen 20
    for _ in range(5):
        assert consumer.lag() == {("frames", 0): 40}
    assert client.asked == 1                                            # the same second: the last answer
    now[0] += 1.5
    client.rebalancing = True
    consumer.lag()
    assert client.asked == 1                                            # not while the group rebalances
    client.rebalancing = False
    consumer.lag()
    assert client.asked == 2
