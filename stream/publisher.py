"""The one place records leave the service: sends, keeps every future, and fails stop.

A consume-infer-produce service may commit an offset only once everything derived from the
messages before it was acknowledged by the broker. :class:`Publisher` keeps each send's future
until :meth:`Publisher.settle` has flushed the producer and checked it. The first failure (a
failed delivery, a send that raised, or an error the service reports with :meth:`poison`) is
kept for good: from then on :meth:`settle` raises, so no commit can happen on any path (periodic,
final, on revoke or on close), and the restart replays from the last good commit.
"""

from __future__ import annotations

from typing import Any


class PublishError(Exception):
    """Something published (or processed) before the next commit failed; do not commit."""


class Publisher:
    """Wraps a kafka-python ``KafkaProducer`` (or a fake with ``send``/``flush``)."""

    def __init__(self, producer: Any) -> None:
        self.producer = producer
        self._futures: list[Any] = []
        self.failure: BaseException | None = None

    @property
    def failed(self) -> bool:
        return self.failure is not None

    def poison(self, exc: BaseException) -> None:
        """Record an error that makes every later commit unsafe (the first one is kept)."""
        if self.failure is None:
            self.failure = exc

    def send(self, topic: str, *, value: bytes, key: bytes | None = None,
             headers: list[tuple[str, bytes]] | None = None) -> Any:
        """Send one record; a send that raises poisons the publisher and re-raises."""
        try:
            future = self.producer.send(topic, key=key, value=value, headers=headers or None)
        except BaseException as exc:
            self.poison(exc)
            raise
        self._futures.append(future)
        return future

    def settle(self) -> bool:
        """Flush, then check every future sent since the last settle. Raises :class:`PublishError`
        if any failed, now or before (for good); True when all are acknowledged (commit now)."""
        if self.failure is None:
            self.producer.flush()
            bad = next((f for f in self._futures if f.failed()), None)
            if bad is not None:
                self.poison(bad.exception)
        if self.failure is not None:
            raise PublishError(f"a publish or processing step failed ({self.failure!r}); not committing, "
                               f"the restart replays from the last commit") from self.failure
        if all(f.is_done for f in self._futures):
            self._futures = []
            return True
        return False

    @property
    def outstanding(self) -> int:
        return len(self._futures)
