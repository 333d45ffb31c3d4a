"""A local Apache Kafka cluster: ``brokers`` KRaft nodes (3 by default) on 127.0.0.1, each a
combined broker+controller :class:`~stream.dev.broker.LocalBroker`, and the faults a test
applies to one node (SIGKILL, SIGTERM and restart, SIGSTOP and SIGCONT).

    with LocalBroker(brokers=3) as cluster:        # the same as LocalCluster(brokers=3)
        cluster.create_topic("frames", partitions=3)   # replication 3, min.insync.replicas 2
        cluster.kill(cluster.busiest_leader("frames")) # a leader election, not an outage

Every node is a voter of the controller quorum ("combined" mode): three JVMs, not six, so the
cluster fits a 2-core CI machine, and a node lost loses a broker and a voter at once (the quorum
of 2 of 3 survives one, as production's does). Production runs dedicated controllers so that a
broker's load never delays the quorum; the client-visible path (leader elections,
NotLeaderOrFollower, stale metadata, fetch sessions moving) is the same.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from stream.dev.broker import (KAFKA_VERSION, MESSAGE_MAX_BYTES, BrokerState, ClusterMember,
                               LocalBroker, create_topic, free_port, random_cluster_id)
from stream.errors import BrokerError

# Three JVMs share the machine with the tests: 384 MiB each holds 16 MiB messages comfortably.
CLUSTER_HEAP_MB = 384


class LocalCluster:
    """``brokers`` combined nodes with a ``brokers``-voter quorum; topics get replication
    ``min(3, brokers)`` and ``min.insync.replicas`` one less (2 of 3), and so do the offsets
    topic and the transaction state log. ``data_dir`` holds ``node-<id>/`` per node."""

    def __init__(self, data_dir: str | Path | None = None, *, brokers: int = 3, version: str = KAFKA_VERSION,
                 heap_mb: int = CLUSTER_HEAP_MB, message_max_bytes: int = MESSAGE_MAX_BYTES,
                 detach: bool = False, port: int = 0, replica_lag_time_ms: int = 6000,
                 session_timeout_ms: int = 6000) -> None:
        if brokers < 2:
            raise BrokerError(f"a cluster has at least 2 brokers, got {brokers!r} (one broker: LocalBroker())")
        self._owns_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="soccerkd-cluster-"))
        self.version = version
        self.replication_factor = min(3, brokers)
        self.min_insync_replicas = self.replication_factor - 1
        ports = [port + i if port else free_port() for i in range(brokers)]
        controllers = [free_port() for _ in range(brokers)]
        voters = ",".join(f"{i + 1}@127.0.0.1:{c}" for i, c in enumerate(controllers))
        cluster_id = random_cluster_id()
        self.nodes = [
            LocalBroker(self.data_dir / f"node-{i + 1}", version=version, heap_mb=heap_mb,
                        message_max_bytes=message_max_bytes, detach=detach, port=ports[i],
                        controller_port=controllers[i],
                        member=ClusterMember(i + 1, voters, cluster_id, self.replication_factor,
                                             self.min_insync_replicas, replica_lag_time_ms, session_timeout_ms))
            for i in range(brokers)]
        self.startup_seconds: float | None = None

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    @property
    def log_path(self) -> Path:
        return self.nodes[0].log_path

    @property
    def process(self) -> Any:
        """The first node's JVM (what a caller of a single broker's ``process`` gets)."""
        return self.nodes[0].process

    def node(self, node_id: int) -> LocalBroker:
        return self.nodes[node_id - 1]

    def start(self, timeout: float = 120.0, *, quiet: bool = True) -> "LocalCluster":
        """Start every node at once (a node is ready only when a quorum of voters runs)."""
        t0 = time.monotonic()
        errors: list[BaseException] = []

        def start(node: LocalBroker) -> None:
            try:
                node.start(timeout, quiet=quiet)
            except BaseException as exc:   # noqa: BLE001 - re-raised below, after every thread ends
                errors.append(exc)

        threads = [threading.Thread(target=start, args=(n,), daemon=True) for n in self.nodes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            self.stop()
            raise errors[0]
        self.startup_seconds = time.monotonic() - t0
        return self

    def state(self) -> BrokerState:
        pids = tuple(n.process.pid for n in self.nodes if n.process is not None)
        if len(pids) != len(self.nodes):
            raise BrokerError("the cluster has not been started (or a node is down)")
        return BrokerState(pid=pids[0], bootstrap=self.bootstrap, data_dir=str(self.data_dir), version=self.version,
                           started_at=time.time(), pids=pids)

    def create_topic(self, name: str, partitions: int = 1, config: dict[str, str] | None = None) -> None:
        create_topic(self.bootstrap, name, partitions=partitions, config=config,
                     replication_factor=self.replication_factor, min_insync_replicas=self.min_insync_replicas)

    def stop(self, timeout: float = 20.0) -> None:
        """Stop every node at once (one after another, each waits for the others' controlled
        shutdown: ~25 s for three)."""
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.send_signal(signal.SIGCONT)   # a paused node cannot shut down
        threads = [threading.Thread(target=node.stop, args=(timeout,), daemon=True) for node in self.nodes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> "LocalCluster":
        return self.start() if any(n.process is None for n in self.nodes) else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults on one node ------------------------------------------------------------------

    def kill(self, node_id: int) -> None:
        """SIGKILL the node's JVM: no controlled shutdown, its leaderships end by the session timeout."""
        node = self.node(node_id)
        if node.process is not None:
            node.process.kill()
            node.process.wait(30)
            node.process = None

    def restart(self, node_id: int, *, down_s: float = 0.0, timeout: float = 120.0) -> LocalBroker:
        """SIGTERM (a controlled shutdown: leaderships move first) unless it is down already,
        then start it again on the same data and ports after ``down_s``."""
        return self.node(node_id).restart(down_s=down_s, timeout=timeout)

    def pause(self, node_id: int) -> None:
        """SIGSTOP: the JVM holds its sockets but answers nothing (a GC pause, a stalled VM)."""
        self._signal(node_id, signal.SIGSTOP)

    def resume(self, node_id: int) -> None:
        self._signal(node_id, signal.SIGCONT)

    def _signal(self, node_id: int, sig: signal.Signals) -> None:
        node = self.node(node_id)
        if node.process is None or node.process.poll() is not None:
            raise BrokerError(f"node {node_id} is not running")
        node.process.send_signal(sig)

    # -- what the cluster says ---------------------------------------------------------------

    def partitions(self, topic: str, *, timeout_s: float = 5.0) -> dict[int, dict[str, Any]]:
        """``{partition: {"leader": id, "isr": [ids], "replicas": [ids]}}`` from the cluster's metadata."""
        from stream.kafka.admin import admin

        with admin(self.bootstrap, timeout_s=timeout_s) as client:
            described = client.describe_topics([topic])
        return {p["partition_index"]: {"leader": p["leader_id"], "isr": sorted(p["isr_nodes"]),
                                       "replicas": sorted(p["replica_nodes"])}
                for t in described if t["name"] == topic for p in t["partitions"]}

    def leaders(self, topic: str, *, timeout_s: float = 5.0) -> dict[int, int]:
        return {p: info["leader"] for p, info in self.partitions(topic, timeout_s=timeout_s).items()}

    def busiest_leader(self, topic: str) -> int:
        """The node that leads most of ``topic``'s partitions (the lowest id on a tie)."""
        counts: dict[int, int] = {}
        for leader in self.leaders(topic).values():
            counts[leader] = counts.get(leader, 0) + 1
        return min(counts, key=lambda n: (-counts[n], n))

    def transaction_coordinator(self, transactional_id: str, *, partitions: int = 3) -> int:
        """The node leading the ``__transaction_state`` partition of ``transactional_id`` (3 of them
        here): Kafka's ``partitionFor``, Java's ``String.hashCode`` made non-negative, modulo the count."""
        h = 0
        for ch in transactional_id:
            h = (31 * h + ord(ch)) & 0xFFFFFFFF
        h = h - (1 << 32) if h >= 1 << 31 else h
        return self.leaders("__transaction_state")[(0 if h == -(1 << 31) else abs(h)) % partitions]

    def wait_in_sync(self, topics: list[str], *, timeout_s: float = 90.0) -> float:
        """Wait until every partition of ``topics`` has its full replica set in sync; returns the
        seconds it took."""
        t0 = time.monotonic()
        while True:
            try:
                if all(info["isr"] == info["replicas"] and len(info["isr"]) == self.replication_factor
                       for topic in topics for info in self.partitions(topic).values()):
                    return time.monotonic() - t0
            except Exception:   # noqa: BLE001 - no answer or partial metadata mid-election: ask again
                pass
            if time.monotonic() - t0 > timeout_s:
                raise BrokerError(f"topics {topics} were not fully in sync within {timeout_s:g} s: "
                                  f"{ {t: self.partitions(t) for t in topics} }")
            time.sleep(0.5)
