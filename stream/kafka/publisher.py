"""The one place records leave the service: sends, keeps every future, and fails stop.

A consume-infer-produce service may commit an offset only once everything derived from the
messages before it was acknowledged by the broker. :class:`Publisher` keeps each send's future
until :meth:`Publisher.settle` has flushed the producer and checked it. The first failure (a
failed delivery, a send that raised, or an error the service reports with :meth:`poison`) is
kept for good: from then on :meth:`settle` raises, so no commit can happen on any path (periodic,
final, on revoke or on close), and the restart replays from the last good commit.

With ``transactional=True`` (``kafka.delivery: exactly_once``) every send goes into a Kafka
transaction begun on demand, and :meth:`Publisher.commit_transaction` commits the outputs
together with the consumed offsets; a failure aborts the transaction.

No producer call may block for ever: kafka-python's flush and transaction steps wait without a
time limit, and a wedged one (a coordinator that never answers, a transaction step retried while
the group waits for this very member) would leave a process that neither works nor dies. Each
one runs against ``timeout_s``; past it the publisher fails stop, so the process exits and its
restart replays from the last commit. The exception: in a transaction, a flush or commit that
times out with ``remake`` given replaces the producer in-process (:class:`ProducerRebuilt`) and
the caller rewinds, as for a refused transaction.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from stream.errors import FailStop


class PublishError(FailStop):
    """Something published (or processed) before the next commit failed; do not commit. One that
    reaches the command is its fail-stop (exit 1; the restart replays from the last commit)."""


class TransactionAborted(PublishError):
    """An exactly-once commit was refused because the group moved on (a rebalance changed the
    generation, KIP-447 fencing) and the transaction was aborted. Not a failure of the data:
    the caller rewinds to the committed offsets and carries on with a fresh transaction."""


class PublishTimeout(PublishError):
    """A flush or transaction step did not finish within the publisher's ``timeout_s``."""


class ProducerRebuilt(TransactionAborted):
    """A transaction step outlived ``timeout_s`` and the transactional producer was replaced by a
    new one of the same transactional id, which fenced it: its open transaction is aborted (or,
    if its commit got through, completed) by the coordinator. Like a refused transaction, the
    caller rewinds to the committed offsets and makes the outputs again in the next one."""


def call_within(timeout_s: float, what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` with a deadline: raises :class:`PublishTimeout` if it has not returned within
    ``timeout_s`` (the call itself is left to finish, or not, on a daemon thread)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = fn(*args)
        except BaseException as exc:   # handed to the caller below
            box["error"] = exc

    worker = threading.Thread(target=run, name=f"publisher-{what}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise PublishTimeout(f"producer {what} did not finish within {timeout_s:g} s (kafka.commit_timeout_s)")
    if "error" in box:
        raise box["error"]
    return box.get("result")


class Sends:
    """The futures of records sent and not yet known to be acknowledged (kafka-python's
    ``FutureRecordMetadata``): the one bookkeeping of the publisher and the ingester."""

    def __init__(self) -> None:
        self._futures: list[Any] = []

    def add(self, future: Any) -> Any:
        self._futures.append(future)
        return future

    def __len__(self) -> int:
        return len(self._futures)

    def failure(self) -> BaseException | None:
        """The error of the first send known to have failed, if any."""
        bad = next((f for f in self._futures if f.is_done and f.failed()), None)
        return None if bad is None else bad.exception

    def all_done(self) -> bool:
        return all(f.is_done for f in self._futures)

    def forget_acknowledged(self) -> None:
        """Drop the sends that succeeded (keeps the pending and the failed)."""
        self._futures = [f for f in self._futures if not f.is_done or f.failed()]

    def clear(self) -> None:
        self._futures = []


class Publisher:
    """Wraps a kafka-python ``KafkaProducer`` (or a fake with ``send``/``flush``)."""

    def __init__(self, producer: Any, *, transactional: bool = False, timeout_s: float = 30.0,
                 remake: Callable[[], Any] | None = None) -> None:
        self.producer = producer
        self.transactional = transactional
        self.timeout_s = timeout_s
        self.remake = remake   # a new transactional producer (init_transactions done), or None: fail stop
        self.rebuilds = 0
        self._sends = Sends()
        self._in_transaction = False
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
            self._begin()
            future = self.producer.send(topic, key=key, value=value, headers=headers or None)
        except BaseException as exc:
            self.poison(exc)
            raise
        return self._sends.add(future)

    def settle(self) -> bool:
        """Flush, then check every future sent since the last settle. Raises :class:`PublishError`
        if any failed, now or before (for good), or :class:`ProducerRebuilt` (see :meth:`_rebuild`);
        True when all are acknowledged (commit now)."""
        if self.failure is None:
            try:
                call_within(self.timeout_s, "flush", self.producer.flush)
            except PublishTimeout as exc:
                if self.transactional and self.remake is not None:   # sends wait on a dead coordinator too
                    self._rebuild(exc)
                self.poison(exc)
            else:
                failure = self._sends.failure()   # after a flush every send is done
                if failure is not None:
                    self.poison(failure)
        if self.failure is not None:
            raise PublishError(f"not committing after a failed publish or processing step: "
                               f"{type(self.failure).__name__}: {self.failure}") from self.failure
        if self._sends.all_done():
            self._sends.clear()
            return True
        return False

    @property
    def outstanding(self) -> int:
        return len(self._sends)

    # -- exactly once -----------------------------------------------------------------------
    def commit_transaction(self, offsets: Any, group_metadata: Any) -> None:
        """Exactly-once commit: the consumed ``offsets`` join the open transaction (one is begun
        if nothing was sent since the last), which then commits, outputs and offsets together.
        Call after :meth:`settle` returned True. On any error the transaction is aborted and the
        publisher poisoned, so nothing is committed after it; except a step that timed out with
        ``remake`` given, which replaces the producer (:meth:`_rebuild`)."""
        from kafka.errors import CommitFailedError

        try:
            self._begin()
            call_within(self.timeout_s, "send_offsets_to_transaction", self.producer.send_offsets_to_transaction,
                        offsets, group_metadata)
            call_within(self.timeout_s, "commit_transaction", self.producer.commit_transaction)
            self._in_transaction = False
        except CommitFailedError as exc:   # abortable: the group's generation moved on
            self.discard()
            raise TransactionAborted(f"transaction aborted, the group moved on: {exc}") from exc
        except BaseException as exc:
            if isinstance(exc, PublishTimeout) and self.remake is not None and self.failure is None:
                self._rebuild(exc)   # raises ProducerRebuilt, or PublishError if that failed too
            self.poison(exc)
            self.abort()
            raise PublishError(f"transaction commit failed, aborted it: {type(exc).__name__}: {exc}") from exc

    def abort(self) -> None:
        """Abort the open transaction, if any (its records stay invisible to read_committed)."""
        if self._in_transaction:
            self._in_transaction = False
            try:
                call_within(self.timeout_s, "abort_transaction", self.producer.abort_transaction)
            except Exception:   # a fenced, broken or wedged producer: the broker aborts it on time-out
                pass

    @contextmanager
    def bounded(self, timeout_s: float) -> Iterator[None]:
        """Within the block, every producer call gives up after ``timeout_s`` at most (a rebalance
        callback on kafka-python's IO thread must end well inside the session timeout)."""
        saved, self.timeout_s = self.timeout_s, min(self.timeout_s, timeout_s)
        try:
            yield
        finally:
            self.timeout_s = saved

    def discard(self) -> bool:
        """Abort the open transaction and forget its sends (they will not be visible to
        read_committed readers; the caller makes them again). True if one was open."""
        was_open = self._in_transaction
        self.abort()
        self._sends.clear()
        return was_open

    def close(self) -> None:
        """Abort an open transaction, flush and close the producer, each step bounded."""
        try:
            self.abort()
            if self.failure is None:
                call_within(self.timeout_s, "flush", self.producer.flush)
        finally:
            self.producer.close(timeout=self.timeout_s)

    def _rebuild(self, cause: PublishTimeout) -> None:
        """Replace a wedged transactional producer. kafka-python 3.0.12 can wait for ever on a
        transaction coordinator that was killed (``benchmarks/repro_coordinator_failover.py``); a
        new producer of the same transactional id finds the new coordinator, and its
        ``init_transactions`` fences the old one. Raises :class:`ProducerRebuilt`, or
        :class:`PublishError` (fail stop) when the new one cannot be made within ``timeout_s``."""
        old, self.producer = self.producer, None
        self._in_transaction = False
        self._sends.clear()
        try:   # without waiting: its sender may be stuck; the new producer fences it anyway
            call_within(1.0, "close", lambda: old.close(timeout=0))
        except Exception:
            pass
        try:
            self.producer = call_within(self.timeout_s, "rebuild", self.remake)
        except BaseException as exc:
            self.producer = old   # closed; kept so that close() has something to close
            self.poison(exc)
            raise PublishError(f"{cause}; making a new transactional producer failed too: "
                               f"{type(exc).__name__}: {exc}") from exc
        self.rebuilds += 1
        raise ProducerRebuilt(f"{cause}; replaced the transactional producer (fencing the old one)") from cause

    def _begin(self) -> None:
        if self.transactional and not self._in_transaction:
            self.producer.begin_transaction()
            self._in_transaction = True
