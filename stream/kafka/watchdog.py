"""A watchdog over the Kafka client's fetching.

While the client delivers no record at all, an assigned, unpaused partition that is behind its
end offset and did not move since the last check gets its fetch reset (a seek to where it is);
still stuck at the next check, the service fails stop, so that its restart gets a fresh client
and replays from the last commit. Both are counted and logged.

Why: after a broker restart, kafka-python 3.0.12 consumers that lived through it (and paused
and resumed partitions) were seen to stop fetching some partitions for good, with the loop
healthy and nothing in the logs; a seek did not help. A client fault then costs about 30 s and a
restart, not the rest of a match.
"""

from __future__ import annotations

import logging
from typing import Callable, Protocol

from stream.core.ledger import TopicPartition
from stream.errors import FailStop

log = logging.getLogger("soccerkd.serve")


class Fetching(Protocol):
    """What the watchdog reads of a consumer (:class:`~stream.kafka.consumer.FramesConsumer`)."""

    def fetch_progress(self) -> dict[TopicPartition, tuple[int, int]]: ...
    def fetch_state(self, tp: TopicPartition) -> str: ...
    def reset_fetch(self, tp: TopicPartition, offset: int) -> None: ...


class FetchWatchdog:
    """Call :meth:`check` every ``interval_s``; ``on_stall`` counts each stall found."""

    def __init__(self, consumer: Fetching, *, interval_s: float = 15.0,
                 on_stall: Callable[[], None] = lambda: None) -> None:
        self.consumer = consumer
        self.interval_s = interval_s
        self.on_stall = on_stall
        self._last_positions: dict[TopicPartition, int] = {}
        self._reset_at: dict[TopicPartition, int] = {}

    def check(self, *, judge: bool) -> None:
        """One look. ``judge``: False while the client delivers records, is paused or has no
        broker (a busy service that works through one partition's buffered records while another
        waits is slow, not stuck); that forgets what was seen."""
        if not judge:
            self._last_positions, self._reset_at = {}, {}
            return
        try:
            progress = self.consumer.fetch_progress()
        except Exception as exc:
            log.debug("fetch progress unavailable: %s", exc)
            return
        for tp, (position, end) in progress.items():
            if end > position and self._last_positions.get(tp) == position:
                self.on_stall()
                state = self.consumer.fetch_state(tp)   # why the client is not fetching it, for a diagnosis
                if self._reset_at.get(tp) == position:
                    raise FailStop(f"the Kafka client stopped fetching {tp[0]}[{tp[1]}] at offset {position} "
                                   f"(end {end}) and a reset did not help, so a restart gets a fresh client. "
                                   f"Client state: {state}")
                log.warning("partition %s[%d] made no progress at offset %d (end %d) in %.0f s; resetting its fetch. "
                            "Client state: %s", tp[0], tp[1], position, end, self.interval_s, state)
                self.consumer.reset_fetch(tp, position)
                self._reset_at[tp] = position
        self._last_positions = {tp: position for tp, (position, _end) in progress.items()}
