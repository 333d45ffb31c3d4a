"""Reproducer: how long kafka-python's clients stall when the broker that is their coordinator
(transaction coordinator, group coordinator) or a listed broker dies, on a local 3-node KRaft
cluster (``stream.dev.cluster.LocalCluster``: replication 3, min.insync.replicas 2).

Two probes, on one cluster, one after another:

1. ``txn``: a transactional producer commits a one-record transaction every 100 ms; SIGKILL the
   node that coordinates its transactional id; print the longest gap between two commits and
   whether the gap outlasted the node's fencing (``broker.session.timeout.ms``).
   The same with SIGSTOP (past the session timeout) instead of SIGKILL, and each with the
   producer's ``request_timeout_ms`` at its default (30 s) and at 10 s.
2. ``metadata``: right after SIGKILL of a node, fresh ``KafkaConsumer``s call
   ``partitions_for_topic`` for a topic that exists; count the calls that raise instead of asking
   another broker.

    python benchmarks/repro_coordinator_failover.py            # prints a table, writes JSON

Versions measured: kafka-python 3.0.12 (CPython 3.11), Apache Kafka 4.3.1 (KRaft, combined nodes).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stream.dev.cluster import LocalCluster  # noqa: E402


def transaction_coordinator(cluster: LocalCluster, transactional_id: str, partitions: int = 3) -> int:
    return cluster.transaction_coordinator(transactional_id, partitions=partitions)


def probe_transactions(cluster: LocalCluster, topic: str, *, fault: str = "kill", request_timeout_ms: int = 30000,
                       kill_after_s: float = 5.0, run_s: float = 45.0) -> dict:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap.split(","), transactional_id=f"repro-{fault}",
                             acks="all", enable_idempotence=True, request_timeout_ms=request_timeout_ms)
    producer.init_transactions()
    commits: list[float] = []
    errors: list[str] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                producer.begin_transaction()
                producer.send(topic, b"x")
                producer.commit_transaction()
                commits.append(time.monotonic())
            except Exception as exc:   # noqa: BLE001 - recorded
                errors.append(repr(exc)[:200])
                try:
                    producer.abort_transaction()
                except Exception:   # noqa: BLE001
                    pass
            time.sleep(0.1)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    time.sleep(kill_after_s)
    # the node the client itself uses as its transaction coordinator ("coordinator-<id>")
    client_view = str(producer._transaction_manager._transaction_coordinator or "")
    victim = int(client_view.rsplit("-", 1)[1]) if client_view.startswith("coordinator-") \
        else transaction_coordinator(cluster, f"repro-{fault}")
    t_kill = time.monotonic()
    if fault == "kill":   # SIGKILL, 4 s down, start again
        cluster.kill(victim)
        time.sleep(4)
        cluster.restart(victim)
    else:                 # SIGSTOP past the session timeout and the replica lag time, then SIGCONT
        cluster.pause(victim)
        time.sleep(10)
        cluster.resume(victim)
    t_back = time.monotonic()
    time.sleep(max(0.0, run_s - (t_back - t_kill)))
    stop.set()
    thread.join(5)
    stuck = thread.is_alive()   # still inside begin/send/commit at the end of the run
    manager = producer._transaction_manager
    final = {"txn_state": str(manager._current_state), "coordinator": str(manager._transaction_coordinator),
             "pending_txn_requests": len(manager._pending_requests),
             "in_flight_txn_request": manager.has_in_flight_transactional_request()}
    try:
        producer.close(timeout=5)
    except Exception as exc:   # noqa: BLE001 - a producer that cannot flush is the finding
        errors.append(f"close: {exc!r}"[:200])
    after = [t for t in commits if t > t_kill]
    first_after = (after[0] - t_kill) if after else None
    gaps = [b - a for a, b in zip(commits, commits[1:])]
    cluster.wait_in_sync([topic, "__transaction_state"])
    return {"probe": f"txn-{fault}", "request_timeout_ms": request_timeout_ms, "coordinator_node": victim, "commits": len(commits), "errors": errors[:3],
            "first_commit_after_kill_s": first_after and round(first_after, 1),
            "node_back_after_s": round(t_back - t_kill, 1), "max_gap_s": round(max(gaps), 1) if gaps else None,
            "still_stuck_at_end": stuck, "run_s": run_s, "at_end": final}


def probe_metadata(cluster: LocalCluster, topic: str, tries: int = 12) -> dict:
    from kafka import KafkaConsumer

    victim = 1
    cluster.kill(victim)
    t_kill = time.monotonic()
    failures: list[str] = []
    for _ in range(tries):
        consumer = None
        try:
            consumer = KafkaConsumer(bootstrap_servers=cluster.bootstrap.split(","), bootstrap_timeout_ms=5000)
            consumer.partitions_for_topic(topic)
        except Exception as exc:   # noqa: BLE001 - recorded
            failures.append(f"{time.monotonic() - t_kill:.1f}s {exc!r}"[:160])
        finally:
            if consumer is not None:
                consumer.close()
        time.sleep(0.3)
    cluster.restart(victim)
    cluster.wait_in_sync([topic])
    return {"probe": "metadata", "killed_node": victim, "tries": tries, "failed": len(failures),
            "examples": failures[:3]}


def main() -> None:
    import kafka

    with LocalCluster(brokers=3) as cluster:
        cluster.create_topic("repro", partitions=3)
        results = [probe_metadata(cluster, "repro")]
        print(json.dumps(results[-1]), flush=True)
        for fault in ("kill", "pause"):
            for timeout_ms in (30000, 10000):
                results.append(probe_transactions(cluster, "repro", fault=fault, request_timeout_ms=timeout_ms))
                print(json.dumps(results[-1]), flush=True)
    meta = {"kafka_python": kafka.__version__, "kafka_broker": cluster.version, "python": sys.version.split()[0]}
    out = Path(__file__).with_suffix(".json")
    out.write_text(json.dumps({"versions": meta, "results": results}, indent=2) + "\n")
    print(f"versions: {meta}; written {out}")


if __name__ == "__main__":
    main()
