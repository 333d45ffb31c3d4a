"""The reading clock that idle eviction counts a camera's silence in (stream.core.clocks)."""

from __future__ import annotations

import pytest

from stream.core.clocks import ReadingClock
from stream.dev.testing import FakeClock


def test_it_counts_reading_time_and_a_stall_as_one_step():
    wall = FakeClock(0.0)
    clock = ReadingClock(monotonic=wall, max_step_s=1.0)
    for _ in range(10):   # a loop turning every 0.5 s
        wall.advance(0.5)
        clock.tick(reading=True)
    assert clock() == pytest.approx(5.0)
    wall.advance(45.0)    # SIGSTOP, a long GC: the next turn comes 45 s later
    clock.tick(reading=True)
    assert clock() == pytest.approx(6.0)


def test_it_stops_while_the_service_cannot_read():
    wall = FakeClock(0.0)
    clock = ReadingClock(monotonic=wall)
    for _ in range(60):   # broker down, paused for backpressure or rebalancing for a minute
        wall.advance(1.0)
        clock.tick(reading=False)
    assert clock() == 0.0
    wall.advance(0.25)
    clock.tick(reading=True)
    assert clock() == pytest.approx(0.25)   # only the time since the last turn counts


def test_a_pause_longer_than_the_idle_timeout_evicts_no_camera():
    """The delivery issue's pause: with wall time, a serve paused for more than 30 s evicted every
    camera on its first turn back, before the frames waiting in Kafka were read."""
    from stream.core.ledger import SourceRef
    from stream.core.pipeline import Pipeline
    from stream.core.wire import encode_frame_batch
    from stream.dev.testing import ScriptedPredictor, solid_batch

    wall = FakeClock(0.0)
    clock = ReadingClock(monotonic=wall)
    pipe = Pipeline(ScriptedPredictor(), idle_clock=clock)
    pipe.offer_messages([(encode_frame_batch(solid_batch("a", 0, [(230, 20, 20)] * 4)), SourceRef("frames", 0, 0))])
    pipe.drain()
    wall.advance(40.0)
    clock.tick(reading=True)
    assert pipe.close_idle().events == [] and [c.key[1] for c in pipe.cameras] == ["a"]
    for _ in range(30):   # 30 s of reading with no message from "a": now it is idle
        wall.advance(1.0)
        clock.tick(reading=True)
    pipe.close_idle()
    assert list(pipe.cameras) == []


def test_a_bad_step_is_refused():
    with pytest.raises(ValueError, match="max_step_s"):
        ReadingClock(max_step_s=0)
