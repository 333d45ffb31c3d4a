"""Reproducer, for a kafka-python report: a record whose header key is not UTF-8 poisons its
partition.

    python benchmarks/repro_header_key.py            # starts a local broker (stream.dev.broker)
    python benchmarks/repro_header_key.py --bootstrap HOST:PORT

Kafka's protocol types a header key as a UTF-8 string, but nothing checks it on the way in: the
broker stores any bytes, and a librdkafka producer sends whatever ``const char *`` it is given.
kafka-python 3.0.12's consumer then raises ``CorruptRecordError`` (UnicodeDecodeError) from
``poll()`` at that record, and, measured against Kafka 4.3, the next ``poll(timeout_ms=1000)``
does not return for minutes: the partition stops for every consumer in the group. The producer
here writes such a key through kafka-python itself (a ``str`` whose ``encode`` returns invalid
UTF-8), which stands in for librdkafka. Prints what each poll did; exits 1 if the bug shows.

SoccerKD Stream works around it (``stream.kafka.consumer.FramesConsumer._skip_unreadable``):
it reads the partition and offset from the fetcher, seeks past the record and dead-letters it as
``unreadable_record``.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class NotUtf8(str):
    def encode(self, *args, **kwargs) -> bytes:   # what a librdkafka producer may send
        return b"\xff\xfetrace"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", help="an existing broker (default: start a local one)")
    ap.add_argument("--wait-s", type=float, default=20.0, help="how long the second poll may take")
    args = ap.parse_args(argv)
    import kafka
    from kafka import KafkaConsumer, KafkaProducer

    broker = None
    if args.bootstrap is None:
        from stream.dev.broker import LocalBroker

        broker = LocalBroker().start()
    bootstrap = args.bootstrap or broker.bootstrap
    topic = f"repro-{uuid.uuid4().hex[:8]}"
    try:
        from kafka.admin import KafkaAdminClient, NewTopic

        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=bootstrap)
        for value, headers in ((b"before", []), (b"bad", [(NotUtf8("trace"), b"1")]), (b"after", [])):
            producer.send(topic, value=value, headers=headers)
        producer.flush()
        producer.close()
        consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                 group_id=topic, enable_auto_commit=False)
        print(f"kafka-python {kafka.__version__}, broker {getattr(broker, 'version', bootstrap)}")
        outcome: dict = {}

        def polls() -> None:
            for n in (1, 2, 3):
                t0 = time.monotonic()
                try:
                    got = [r.value for recs in consumer.poll(timeout_ms=1000).values() for r in recs]
                    outcome[n] = f"returned {got} in {time.monotonic() - t0:.1f} s"
                except Exception as exc:
                    outcome[n] = f"raised {type(exc).__name__} in {time.monotonic() - t0:.1f} s: {exc}"
                print(f"poll {n}: {outcome[n]}", flush=True)

        worker = threading.Thread(target=polls, daemon=True)
        worker.start()
        worker.join(args.wait_s)
        hung = worker.is_alive()
        if hung:
            print(f"poll {len(outcome) + 1}: still blocked after {args.wait_s:.0f} s (timeout_ms=1000)")
        return 1 if hung or any("raised" in o for o in outcome.values()) else 0
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    sys.exit(main())
