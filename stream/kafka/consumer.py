"""The frames consumer as one object: subscribe, poll, pause, lag, rewind, restore, commits and
the fetch watchdog's checks, over kafka-python's ``KafkaConsumer``.

The serve loop talks only to :class:`FramesConsumer` (tests pass a fake with the same methods);
kafka-python types and errors stay in this package.

**Rebalance rule.** Revoked partitions: what was published is acknowledged and the safe points
committed (with resume metadata), then every window and smoother state of those cameras is
*dropped* - open windows are not flushed, because the new owner rebuilds them from the committed
offset and resume points, which yields the same windows and event ids. Lost partitions (session
expired): state is dropped without committing. Assigned partitions: the committed metadata is
read and replay starts at each camera's resume point.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Iterable

from stream.core.ledger import CommitPoints, SourceRef, TopicPartition
from stream.errors import StreamError
from stream.kafka.config import KafkaConfig
from stream.kafka.connection import make_consumer, partitions_for_topic

if TYPE_CHECKING:
    from kafka import KafkaConsumer

Callback = Callable[[list[TopicPartition]], None]


class BrokerUnreachable(StreamError):
    """A poll found no broker to talk to; the caller reports it and polls again."""


class UnreadableRecord:
    """Stands for a record the client could not parse: only where it was is known (its dead
    letter has an empty value: a Kafka record needs a key or a value)."""

    key = timestamp = None
    value = b""
    headers: list = []

    def __init__(self, topic: str, partition: int, offset: int, error: str) -> None:
        self.topic, self.partition, self.offset, self.error = topic, partition, offset, error


class FramesConsumer:
    """The service's consumer of the frames topic (manual commits, cooperative rebalancing).

    ``consumer``: a kafka-python ``KafkaConsumer`` built elsewhere (default: from ``config``).
    ``monotonic``: the clock that spaces the broker requests of :meth:`lag`.
    """

    def __init__(self, config: KafkaConfig, *, consumer: "KafkaConsumer | None" = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._consumer = consumer if consumer is not None else make_consumer(config)
        self._paused = False
        self._paused_ends: dict[Any, int] = {}   # end offsets of paused partitions, asked of the broker
        self._ends_asked_at = float("-inf")
        self._monotonic = monotonic

    # -- group --------------------------------------------------------------------------------
    def topic_exists(self, topic: str) -> bool:
        return bool(partitions_for_topic(self._consumer, topic, within_s=self.config.connect_timeout_s))

    def subscribe(self, topic: str, *, assigned: Callback, revoked: Callback, lost: Callback) -> None:
        self._consumer.subscribe([topic], listener=make_listener(revoked=revoked, assigned=assigned, lost=lost))

    def group_busy(self) -> bool:
        """Whether the consumer is (re)joining its group.

        Uses kafka-python 3.0.x internals (``_coordinator``), guarded: kafka-python abandons a join
        that does not finish within one ``poll`` timeout, so callers poll longer while this holds.
        """
        coord = getattr(self._consumer, "_coordinator", None)
        try:
            return bool(coord.coordinator_unknown() or coord.rebalance_in_progress() or coord.need_rejoin())
        except Exception:
            return False

    def group_metadata(self) -> Any:
        return self._consumer.group_metadata()

    def rejoin(self, *, member_unknown: bool = False) -> None:
        """Make the next poll rejoin the group with fresh metadata: after a transaction refused
        for a stale generation, or (``member_unknown``) by a coordinator that no longer knows
        this member, which must then join as a new one. kafka-python 3.0.x internals, guarded."""
        coord = getattr(self._consumer, "_coordinator", None)
        if coord is None:
            return
        if member_unknown:
            coord.reset_generation()
        else:
            coord.request_rejoin()

    # -- records ------------------------------------------------------------------------------
    def poll(self, timeout_ms: int) -> list[tuple[SourceRef, Any]]:
        """One poll's records, each with where it came from (its key travels with the ref: a
        record not keyed by its camera id is dead-lettered). Raises :class:`BrokerUnreachable`."""
        from kafka.errors import CorruptRecordError, KafkaConnectionError

        try:
            records = self._consumer.poll(timeout_ms=timeout_ms)
        except KafkaConnectionError as exc:
            raise BrokerUnreachable(str(exc)) from exc
        except CorruptRecordError as exc:
            return self._skip_unreadable(exc)
        return [(SourceRef(r.topic, r.partition, r.offset, key=r.key if r.key is not None else b""), r)
                for recs in records.values() for r in recs]

    def _skip_unreadable(self, exc: Exception) -> list[tuple[SourceRef, Any]]:
        """A record kafka-python cannot parse (3.0.12: a header key that is not UTF-8, which
        librdkafka producers can write) raises from every poll, and the poll after it hung for
        minutes (benchmarks/repro_header_key.py). Its partition and offset are read from the
        fetcher (kafka-python internals, guarded), the consumer seeks past it, and it comes back
        as an :class:`UnreadableRecord` for the dead-letter topic. Unknown position: re-raised.
        kafka-python parses a producer batch from its start, so the records after it in the same
        batch raise the same error and are dead-lettered the same way, one by one (they stay in
        the frames topic for a client that can read them)."""
        part = getattr(getattr(self._consumer, "_fetcher", None), "_next_partition_records", None)
        tp, offset = getattr(part, "topic_partition", None), getattr(part, "next_fetch_offset", None)
        if tp is None or not isinstance(offset, int):
            raise exc
        part.drain()
        if offset != self._consumer.position(tp):   # a fetch from before an earlier skip: fetched again
            return []
        self._consumer.seek(tp, offset + 1)
        return [(SourceRef(tp.topic, tp.partition, offset, key=b""), UnreadableRecord(tp.topic, tp.partition, offset,
                                                                                   str(exc)))]

    @property
    def paused(self) -> bool:
        return self._paused

    def set_paused(self, paused: bool) -> None:
        """Pause (or resume) every assigned partition; partitions assigned while paused are
        paused too (see :meth:`keep_paused`)."""
        parts = list(self._consumer.assignment())
        if parts:
            (self._consumer.pause if paused else self._consumer.resume)(*parts)
        self._paused = paused

    def keep_paused(self) -> None:
        """Apply the pause to partitions assigned since it began (backpressure acts on every
        assigned partition, not only on those there when it started)."""
        if self._paused:
            fresh = [p for p in self._consumer.assignment() if p not in self._consumer.paused()]
            if fresh:
                self._consumer.pause(*fresh)

    # -- offsets ------------------------------------------------------------------------------
    def committed_metadata(self, tp: TopicPartition) -> str | None:
        from kafka.structs import TopicPartition as KTP

        om = self._consumer.committed(KTP(*tp), metadata=True)
        return getattr(om, "metadata", None) if om is not None else None

    def commit(self, points: CommitPoints) -> None:
        """Synchronously commit ``{(topic, partition): (offset, metadata)}``."""
        if points:
            self._consumer.commit(kafka_offsets(points))

    def commit_async(self, points: CommitPoints, *,
                     on_error: Callable[[BaseException], None] = lambda exc: None) -> None:
        """Queue a commit without blocking (also usable inside rebalance callbacks).

        Commits go out in order on the coordinator connection; ``on_error`` gets a failed one.
        """
        def done(_offsets: Any, result: Any) -> None:
            if isinstance(result, BaseException):
                on_error(result)

        if points:
            self._consumer.commit_async(kafka_offsets(points), callback=done)

    def rewind(self, tps: Iterable[TopicPartition]) -> None:
        """Seek each partition back to its committed offset (the beginning if none)."""
        from kafka.structs import TopicPartition as KTP

        for tp in tps:
            part = KTP(*tp)
            offset = self._consumer.committed(part)
            if offset is None:
                self._consumer.seek_to_beginning(part)
            else:
                self._consumer.seek(part, offset)

    def lag(self) -> dict[TopicPartition, int]:
        """High watermark minus position, per assigned partition. The high watermark is the one of
        the last fetch (no request), except for paused partitions: the client fetches nothing for
        them and that watermark would freeze, so their end offsets are asked of the broker (one
        ListOffsets request of at most a second, at most once a second; on failure the fetched
        watermark stands)."""
        out: dict[TopicPartition, int] = {}
        paused = [p for p in self._consumer.assignment() if p in self._consumer.paused()]
        # At most once a second and never during a rebalance: kafka-python serves the request on
        # its IO thread, and asked every commit interval it starved the heartbeats and the join
        # of a cooperative rebalance (a CI run saw one that never finished).
        now = self._monotonic()
        if paused and now - self._ends_asked_at >= 1.0 and not self.group_busy():
            self._ends_asked_at = now
            try:
                self._paused_ends = self._consumer.end_offsets(paused, timeout_ms=1000)
            except Exception:   # broker slow or away: the fetched watermark stands this round
                self._paused_ends = {}
        ends = self._paused_ends if paused else {}
        for part in self._consumer.assignment():
            hw = ends.get(part) if ends.get(part) is not None else self._consumer.highwater(part)
            if hw is None:
                continue
            try:
                pos = self._consumer.position(part, timeout_ms=0)
            except Exception:  # position unknown yet (no fetch): skip this round
                continue
            if pos is not None:
                out[(part.topic, part.partition)] = max(0, hw - pos)
        return out

    # -- the fetch watchdog's view --------------------------------------------------------------
    def fetch_progress(self, *, timeout_ms: int = 5000) -> dict[TopicPartition, tuple[int, int]]:
        """(position, end offset) of each assigned, unpaused partition, the end asked of the broker."""
        consumer = self._consumer
        parts = [p for p in consumer.assignment() if p not in consumer.paused()]
        if not parts:
            return {}
        ends = consumer.end_offsets(parts, timeout_ms=timeout_ms)
        out = {}
        for part in parts:
            try:
                position = consumer.position(part, timeout_ms=0)
            except Exception:   # position unknown yet (no fetch, or just rewound): not judged this round
                continue
            if position is not None and ends.get(part) is not None:   # None: unknown, as above
                out[(part.topic, part.partition)] = (position, ends[part])
        return out

    def reset_fetch(self, tp: TopicPartition, offset: int) -> None:
        """Seek a partition to where it is: drops whatever fetch state kafka-python kept for it."""
        from kafka.structs import TopicPartition as KTP

        self._consumer.seek(KTP(*tp), offset)

    def fetch_state(self, tp: TopicPartition) -> str:
        return fetch_state(self._consumer, tp)

    def broker_reachable(self, *, stale_after_s: float) -> bool:
        """Whether the consumer still talks to its group coordinator, for ``/readyz``.

        kafka-python keeps the assignment when the broker goes away, and ``bootstrap_connected()``
        only reports a bootstrap in progress, so neither notices a lost broker. The coordinator is
        forgotten on the first failed request, which also happens for a moment when it moves; a
        heartbeat went out at most ``heartbeat_interval_ms`` before that, so "no coordinator and no
        heartbeat for ``stale_after_s``" means the broker has been out of reach that long.
        """
        # Private, but the client version is pinned. The attribute, not ``coordinator()``: that one
        # marks the coordinator dead as a side effect, which is the IO thread's business.
        coordinator = getattr(self._consumer, "_coordinator", None)
        try:
            if coordinator is not None and getattr(coordinator, "coordinator_id", None) is not None:
                return True
            metrics = self._consumer.metrics() or {}
        except Exception:
            return False
        ages = [v for group in metrics.values() for name, v in group.items() if name == "last-heartbeat-seconds-ago"]
        return bool(ages) and min(ages) <= stale_after_s

    def close(self, *, timeout_s: float) -> None:
        """Leave the group without committing, bounded: a broker that does not answer must not
        hold the shutdown for ``request_timeout_ms``."""
        self._consumer.close(autocommit=False, timeout_ms=int(timeout_s * 1000))


def kafka_offsets(points: CommitPoints) -> dict[Any, Any]:
    """``{(topic, partition): (offset, metadata)}`` as kafka-python's offsets mapping."""
    from kafka.structs import OffsetAndMetadata, TopicPartition as KTP

    return {KTP(t, p): OffsetAndMetadata(o, m, -1) for (t, p), (o, m) in points.items()}


def make_listener(*, revoked: Callable[[list[TopicPartition]], None],
                  assigned: Callable[[list[TopicPartition]], None],
                  lost: Callable[[list[TopicPartition]], None]) -> Any:
    """A ``ConsumerRebalanceListener`` calling the three callbacks with ``(topic, partition)`` lists."""
    from kafka import ConsumerRebalanceListener

    def tps(parts: Iterable[Any]) -> list[TopicPartition]:
        return sorted((p.topic, p.partition) for p in parts)

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked_parts: Any) -> None:
            revoked(tps(revoked_parts))

        def on_partitions_assigned(self, assigned_parts: Any) -> None:
            assigned(tps(assigned_parts))

        def on_partitions_lost(self, lost_parts: Any) -> None:
            lost(tps(lost_parts))

    return Listener()


def fetch_state(consumer: "KafkaConsumer", tp: TopicPartition) -> str:
    """kafka-python's own view of why it is (not) fetching ``tp``, for the watchdog's log line.

    Reads the client's private state (3.0.12): any flag that keeps a partition out of its fetch
    requests (paused, a revocation in progress, an offset validation or reset pending, data
    parked while paused, no leader, a reconnect backoff, a fetch already in flight to the
    leader). It is a diagnosis of the fetch stall the watchdog works around; any failure to read
    it is reported in the line rather than raised.
    """
    from kafka.structs import TopicPartition as KTP

    part = KTP(*tp)
    try:
        state = consumer._subscription.assignment[part]
        fetcher = consumer._fetcher
        cluster = consumer._client.cluster
        leader = cluster.leader_for_partition(part)
        flags = {
            "fetchable": state.is_fetchable(),
            "paused": state.paused,
            "pending_revocation": state._pending_revocation,
            "awaiting_validation": state.awaiting_validation,
            "awaiting_reset": state.awaiting_reset,
            "position": state.position,
            "next_allowed_retry_s": (None if state.next_allowed_retry_time is None
                                     else round(state.next_allowed_retry_time - time.monotonic(), 1)),
            "parked_while_paused": (part in fetcher._paused_completed_fetches
                                    or part in fetcher._paused_partition_records),
            "completed_fetch_queued": any(f.topic_partition == part for f in list(fetcher._completed_fetches)),
            "leader": leader,
            "leader_epoch": cluster.leader_epoch_for_partition(part),
            "leader_backoff_s": (None if leader in (None, -1)
                                 else round(consumer._client._manager.connection_delay(leader), 1)),
            "fetch_in_flight_to_leader": leader in fetcher._nodes_with_pending_fetch_requests,
        }
    except Exception as exc:   # private state of another version: say so, do not fail the watchdog
        return f"kafka-python state unreadable ({type(exc).__name__}: {exc})"
    return " ".join(f"{k}={v}" for k, v in flags.items())

