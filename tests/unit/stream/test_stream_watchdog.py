"""The fetch watchdog: a partition behind its end offset that does not move between two checks
has its fetch reset (a seek to its position), and it is counted; still stuck at the next check,
the service fails stop; a moving, caught-up or paused one is left alone."""

import pytest

from kafka.structs import TopicPartition as KTP
from prometheus_client import CollectorRegistry

from stream.config import StreamConfig
from stream.errors import FailStop
from stream.metrics import Metrics
from stream.service import StreamService
from stream.testing import ScriptedPredictor


class StuckConsumer:
    def __init__(self):
        self.positions = {KTP("frames", 0): 10, KTP("frames", 1): 5, KTP("frames", 2): 7}
        self.ends = {KTP("frames", 0): 50, KTP("frames", 1): 5, KTP("frames", 2): 9}
        self.paused_parts, self.seeks = set(), []

    def assignment(self):
        return set(self.positions)

    def paused(self):
        return self.paused_parts

    def end_offsets(self, parts, timeout_ms=None):
        return {p: self.ends[p] for p in parts}

    def position(self, part, timeout_ms=None):
        return self.positions[part]

    def seek(self, part, offset):
        self.seeks.append(((part.topic, part.partition), offset))


def test_a_stuck_partition_is_refetched_and_counted():
    svc = StreamService(StreamConfig(), predictor=ScriptedPredictor(), metrics=Metrics(CollectorRegistry()))
    svc._consumer, svc._broker_ok = StuckConsumer(), True
    svc._consumer.paused_parts = {KTP("frames", 2)}   # paused by backpressure: behind on purpose
    svc._unstall()                                    # first look: nothing to compare with
    assert svc._consumer.seeks == []
    svc._consumer.positions[KTP("frames", 1)] = 5     # caught up: not stuck
    svc._unstall()
    assert svc._consumer.seeks == [(("frames", 0), 10)]
    assert svc.metrics.registry.get_sample_value("soccerkd_fetch_stalls_total") == 1.0
    svc._consumer.positions[KTP("frames", 0)] = 30    # it moves again: left alone
    svc._unstall()
    assert svc._consumer.seeks == [(("frames", 0), 10)]
    svc._consumer.positions[KTP("frames", 0)] = 50   # caught up from now on
    svc._consumer.positions[KTP("frames", 1)] = 3    # rewound behind its end, then stuck: reset, then...
    svc._unstall()
    svc._unstall()
    assert svc._consumer.seeks[-1] == (("frames", 1), 3) and len(svc._consumer.seeks) == 2
    with pytest.raises(FailStop, match=r"stopped fetching frames\[1\] at offset 3 \(end 5\)"):
        svc._unstall()                                # ...still stuck: fail stop for a fresh client


def test_a_busy_service_is_not_judged():
    """Records keep arriving (from another partition, say): a partition waiting behind them is slow,
    not stuck, and nothing is reset."""
    svc = StreamService(StreamConfig(), predictor=ScriptedPredictor(), metrics=Metrics(CollectorRegistry()))
    svc._consumer, svc._broker_ok = StuckConsumer(), True
    for _ in range(4):
        svc.counts["messages"] += 5
        svc._unstall()
    assert svc._consumer.seeks == []
