"""Delivery: what is safe to commit and committing it, and the rebalance callbacks that keep a
partition's state in step with its ownership.

**Rebalance rule.** Revoked partitions: what was published is acknowledged and the safe points
committed (with resume metadata), then every window and smoother state of those cameras is
*dropped* - open windows are not flushed, because the new owner rebuilds them from the committed
offset and resume points, which yields the same windows and event ids. Lost partitions (session
expired): state is dropped without committing. Assigned partitions: the committed metadata is
read (on the main thread, :meth:`Delivery.restore_new`) and replay starts at each camera's resume
point.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from stream.app.metrics import Metrics
from stream.core.ledger import SourceRef, TopicPartition
from stream.core.pipeline import Pipeline
from stream.core.wire import UnreadableRecordError
from stream.errors import FailStop
from stream.kafka.clients import KafkaClients
from stream.kafka.consumer import UnreadableRecord, kafka_offsets
from stream.kafka.publisher import ProducerRebuilt, PublishError, TransactionAborted

log = logging.getLogger("soccerkd.serve")
MAX_ABORTS_IN_A_ROW = 5   # refused exactly-once transactions with no commit between: then fail stop


class Delivery:
    """Commits for one service's pipeline through its Kafka clients; owns the assigned set.

    ``callback_timeout_s``: a revoke runs on kafka-python's IO thread, which also sends the
    heartbeats, so each producer call in it gives up after this long (the service passes a
    quarter of the session timeout: flush, offsets and commit together stay inside it) and the
    service fails stop rather than lose its membership while blocked.
    """

    def __init__(self, pipeline: Pipeline, kafka: KafkaClients, metrics: Metrics, *,
                 callback_timeout_s: float = 5.0) -> None:
        self.pipeline = pipeline
        self.kafka = kafka
        self.metrics = metrics
        self.callback_timeout_s = callback_timeout_s   # the most a revoke may block the IO thread per call
        self.assigned: set[TopicPartition] = set()
        self.commits = 0   # commits made (periodic, final, revoke)
        self.aborts_in_a_row = 0   # exactly-once transactions refused since the last commit
        self._lost = False
        self._new: list[TopicPartition] = []   # assigned or rewound, resume points not read yet

    def commit(self, *, final: bool = False, only: set[TopicPartition] | None = None,
               in_callback: bool = False) -> bool:
        """The one commit path (periodic, final, on revoke): settle the publisher (flush, check
        every send), then commit the pipeline's commit points of the assigned partitions (or of
        ``only``). After any failure, now or earlier, it raises :class:`PublishError` and commits
        nothing, ever again in this process.

        Periodic and revoke commits are asynchronous: a synchronous commit during a cooperative
        rebalance would block the loop that has to call ``poll`` to finish that rebalance, and a
        failed one only means a longer replay (it is counted). The final commit is synchronous.
        With ``kafka.delivery: exactly_once`` every commit is a transaction commit (synchronous),
        offsets of all assigned partitions included, also on revoke: aborting there would drop
        the kept partitions' outputs too.
        """
        publisher, consumer = self.kafka.publisher, self.kafka.consumer
        t0 = time.perf_counter()
        try:
            settled = publisher.settle()
        except TransactionAborted as exc:   # a wedged flush in a transaction: the producer was replaced
            return self._aborted(exc, in_callback)
        self.metrics.observe_stage("publish", time.perf_counter() - t0)
        if not settled:
            return False
        keep = self.assigned if only is None else only
        points = {tp: v for tp, v in self.pipeline.commit_points().items() if tp in keep}
        if not points:
            return False
        if publisher.transactional:   # outputs and offsets commit (or abort) together
            try:
                publisher.commit_transaction(kafka_offsets(points), consumer.group_metadata())
            except TransactionAborted as exc:
                return self._aborted(exc, in_callback)
            self.aborts_in_a_row = 0
        elif final:
            try:
                consumer.commit(points)
            except Exception as exc:
                self.commit_failed(exc)
                return False
        else:
            consumer.commit_async(points, on_error=self.commit_failed)
        self.commits += 1
        return True

    def _aborted(self, exc: TransactionAborted, in_callback: bool) -> bool:
        self.metrics.commit_failed()
        if in_callback:   # no blocking seeks on kafka-python's IO thread: fail stop instead
            self.kafka.publisher.poison(exc)
            raise exc
        self._refused(exc)
        return False

    def _refused(self, exc: TransactionAborted) -> None:
        """A transaction refused because the group moved on (a stale generation, or a member the
        coordinator no longer knows, e.g. after its session expired while the process was
        paused): the consumer rejoins with fresh metadata (retrying with the same would be
        refused again) and every partition is read again from its commit. Too many refusals in
        a row fail stop, so that a restart gets a fresh client."""
        self.aborts_in_a_row += 1
        if self.aborts_in_a_row > MAX_ABORTS_IN_A_ROW:
            raise FailStop(f"exactly-once: {self.aborts_in_a_row} transactions in a row were refused or timed "
                           f"out, the last with: {exc}")
        if isinstance(exc, ProducerRebuilt):   # the group is fine; the producer was the problem
            self.metrics.producer_rebuilt()
            log.warning("%s; rewinding every partition to its committed offset", exc)
        else:
            log.warning("%s; rejoining the group and rewinding every partition to its committed offset", exc)
            self.kafka.consumer.rejoin(member_unknown="UnknownMemberId" in str(exc))
        self._rewind()

    def after_poll(self, records: list[tuple[SourceRef, Any]]) -> list[tuple[SourceRef, Any]]:
        """On the main thread, after each poll: finish what a rebalance callback could not do on
        the IO thread, and read newly assigned partitions' resume points. Partitions lost while
        an exactly-once transaction was open: that transaction holds outputs of the kept
        partitions too, so it is aborted and every kept partition rewound to its commit; the
        poll's records of rewound partitions are dropped (they are fetched again)."""
        if self._lost and self.kafka.publisher.transactional and self.kafka.publisher.discard():
            log.warning("aborted the open transaction after losing partitions; rewinding %s to their commits",
                        sorted(self.assigned))
            rewound = set(self._rewind())
            records = [(ref, rec) for ref, rec in records if ref.tp not in rewound]
        self._lost = False
        self.restore_new()
        return [(ref, rec) for ref, rec in records if not self._unreadable(ref, rec)]

    def _unreadable(self, ref: SourceRef, record: Any) -> bool:
        """Dead-letter a record the Kafka client could not parse (stream.kafka.consumer)."""
        if not isinstance(record, UnreadableRecord):
            return False
        self.pipeline.skip(ref)
        error = UnreadableRecordError(f"the Kafka client could not parse the record: {record.error[:300]}")
        self.metrics.dead_lettered(self.kafka.dead_letters.send(record, ref, error))
        log.warning("dead-lettered %s[%d]@%d (unreadable_record): %s", ref.topic, ref.partition, ref.offset, error)
        return True

    def _rewind(self) -> list[TopicPartition]:
        """After an aborted transaction: forget every partition's state and read each again from
        its committed offset and resume points, so the outputs of the aborted transaction are
        made again, in the next one."""
        tps = sorted(self.assigned)
        for tp in tps:
            self.pipeline.drop_partition(tp)
        self.kafka.consumer.rewind(tps)
        self._new.extend(tps)
        return tps

    def commit_failed(self, exc: BaseException) -> None:
        self.metrics.commit_failed()
        log.warning("commit failed (a restart replays from the previous commit): %s", exc)

    # -- rebalance (kafka-python calls these on its IO thread, inside poll() or close()) --------
    def on_assigned(self, tps: list[TopicPartition]) -> None:
        log.info("assigned %s", tps)
        self.assigned.update(tps)
        self._new.extend(tps)
        self._count_owned(tps)

    def on_revoked(self, tps: list[TopicPartition]) -> None:
        # The main thread waits inside poll()/close() meanwhile, so the pipeline is not touched
        # concurrently, but this must stay short (heartbeats wait): no inference here. What was
        # published is settled and the safe points committed (async, queued before the JoinGroup
        # request); windows still waiting for inference are dropped, and the new owner rebuilds
        # them from those commit points.
        log.info("revoked %s: committing what is published, dropping their windows", tps)
        try:   # each producer call bounded well inside the session timeout; past it: fail stop
            with self.kafka.publisher.bounded(self.callback_timeout_s):
                self.commit(only=None if self.kafka.publisher.transactional else set(tps), in_callback=True)
        except PublishError as exc:
            log.warning("no commit on revoke: %s", exc)
        except Exception as exc:   # the new owner replays from the previous commit
            self.commit_failed(exc)
        self._forget(tps)

    def on_lost(self, tps: list[TopicPartition]) -> None:
        log.warning("lost %s: dropping their windows without committing", tps)
        self._forget(tps)
        self._lost = True   # an open transaction is aborted on the main thread (after_poll)

    def _forget(self, tps: list[TopicPartition]) -> None:
        for tp in tps:
            self.pipeline.drop_partition(tp)
            self.assigned.discard(tp)
            self.metrics.forget_lag(*tp)
        self._count_owned(tps)

    def update_lag(self) -> None:
        """``soccerkd_consumer_lag`` of each owned partition."""
        try:
            for (topic, part), value in self.kafka.consumer.lag().items():
                self.metrics.set_lag(topic, part, value)
        except Exception as exc:
            log.debug("lag unavailable: %s", exc)

    def _count_owned(self, tps: list[TopicPartition]) -> None:
        """``soccerkd_assigned_partitions`` of the topics ``tps`` belong to: the ownership signal."""
        for topic in {t for t, _ in tps}:
            self.metrics.set_assigned(topic, sum(1 for t, _ in self.assigned if t == topic))

    def restore_new(self) -> None:
        """Read the resume points of newly assigned (or rewound) partitions: on the main thread,
        never in a callback."""
        while self._new:
            tp = self._new.pop()
            self.pipeline.restore(tp, self.kafka.consumer.committed_metadata(tp))
