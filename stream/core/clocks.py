"""The reading clock: the seconds a camera's silence is measured in for idle eviction. Pure.

A camera is evicted after ``windows.idle_timeout_s`` without a message; wall time would count
time in which the service could not have seen one: a process paused (SIGSTOP, a long GC, swap),
a broker outage, a rebalance, or the consumer paused for backpressure. Every camera would then
be evicted at once, and its frames still waiting in Kafka would come back to an empty table.
This clock advances only while the service reads, and by at most ``max_step_s`` a turn of the
loop, so a stall of any length counts as one step.
"""

from __future__ import annotations

import time
from typing import Callable


class ReadingClock:
    """Seconds spent reading; call :meth:`tick` once per turn of the serve loop."""

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic, max_step_s: float = 1.0) -> None:
        if not max_step_s > 0:
            raise ValueError(f"max_step_s must be > 0, got {max_step_s!r}")
        self._monotonic = monotonic
        self._max_step = max_step_s
        self._last = monotonic()
        self._now = 0.0

    def tick(self, *, reading: bool) -> None:
        """Account the time since the last tick: up to ``max_step_s`` if the service was reading
        its partitions this turn, none if it was not."""
        t = self._monotonic()
        if reading:
            self._now += min(max(t - self._last, 0.0), self._max_step)
        self._last = t

    def __call__(self) -> float:
        return self._now
