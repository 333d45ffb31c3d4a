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

from stream.app.metrics import Metrics
from stream.core.ledger import TopicPartition
from stream.core.pipeline import Pipeline
from stream.kafka.clients import KafkaClients
from stream.kafka.consumer import kafka_offsets
from stream.kafka.publisher import PublishError, TransactionAborted

log = logging.getLogger("soccerkd.serve")


class Delivery:
    """Commits for one service's pipeline through its Kafka clients; owns the assigned set."""

    def __init__(self, pipeline: Pipeline, kafka: KafkaClients, metrics: Metrics) -> None:
        self.pipeline = pipeline
        self.kafka = kafka
        self.metrics = metrics
        self.assigned: set[TopicPartition] = set()
        self.commits = 0   # commits made (periodic, final, revoke)
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
        settled = publisher.settle()
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
                self.metrics.commit_failed()
                if in_callback:   # no blocking seeks on kafka-python's IO thread: fail stop instead
                    publisher.poison(exc)
                    raise
                log.warning("%s; rewinding every partition to its committed offset", exc)
                self._rewind()
                return False
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

    def _rewind(self) -> None:
        """After an aborted transaction: forget every partition's state and read each again from
        its committed offset and resume points, so the outputs of the aborted transaction are
        made again, in the next one."""
        tps = sorted(self.assigned)
        for tp in tps:
            self.pipeline.drop_partition(tp)
        self.kafka.consumer.rewind(tps)
        self._new.extend(tps)

    def commit_failed(self, exc: BaseException) -> None:
        self.metrics.commit_failed()
        log.warning("commit failed (a restart replays from the previous commit): %s", exc)

    # -- rebalance (kafka-python calls these on its IO thread, inside poll() or close()) --------
    def on_assigned(self, tps: list[TopicPartition]) -> None:
        log.info("assigned %s", tps)
        self.assigned.update(tps)
        self._new.extend(tps)

    def on_revoked(self, tps: list[TopicPartition]) -> None:
        # The main thread waits inside poll()/close() meanwhile, so the pipeline is not touched
        # concurrently, but this must stay short (heartbeats wait): no inference here. What was
        # published is settled and the safe points committed (async, queued before the JoinGroup
        # request); windows still waiting for inference are dropped, and the new owner rebuilds
        # them from those commit points.
        log.info("revoked %s: committing what is published, dropping their windows", tps)
        try:
            self.commit(only=None if self.kafka.publisher.transactional else set(tps), in_callback=True)
        except PublishError as exc:
            log.warning("no commit on revoke: %s", exc)
        except Exception as exc:   # the new owner replays from the previous commit
            self.commit_failed(exc)
        self._forget(tps)

    def on_lost(self, tps: list[TopicPartition]) -> None:
        log.warning("lost %s: dropping their windows without committing", tps)
        self._forget(tps)

    def _forget(self, tps: list[TopicPartition]) -> None:
        for tp in tps:
            self.pipeline.drop_partition(tp)
            self.assigned.discard(tp)
            self.metrics.forget_lag(*tp)

    def restore_new(self) -> None:
        """Read the resume points of newly assigned (or rewound) partitions: on the main thread,
        never in a callback."""
        while self._new:
            tp = self._new.pop()
            self.pipeline.restore(tp, self.kafka.consumer.committed_metadata(tp))
