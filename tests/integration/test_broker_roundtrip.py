"""The local broker is real Kafka: large messages, consumer groups and committed offsets work."""

from __future__ import annotations

import os
import subprocess
import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

FOUR_MB = 4 * 1024 * 1024


def _consumer(broker, topic: str, group: str) -> KafkaConsumer:
    return KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                         enable_auto_commit=False, auto_offset_reset="earliest",
                         max_partition_fetch_bytes=16 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024,
                         consumer_timeout_ms=8000)


def test_four_megabyte_message_is_consumed_once_with_manual_commit(kafka_broker, topic_name):
    kafka_broker.create_topic(topic_name, partitions=1, config={"max.message.bytes": str(8 * 1024 * 1024)})
    payload = os.urandom(FOUR_MB)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, max_request_size=8 * 1024 * 1024,
                             compression_type=None)
    meta = producer.send(topic_name, key=b"cam-1", value=payload).get(timeout=30)
    producer.close()
    assert meta.offset == 0

    first = _consumer(kafka_broker, topic_name, "roundtrip")
    records = []
    for record in first:
        records.append(record)
        first.commit()  # manual, synchronous commit after "processing"
        break
    first.close()
    assert len(records) == 1
    assert records[0].value == payload and records[0].key == b"cam-1"

    restarted = _consumer(kafka_broker, topic_name, "roundtrip")
    again = list(restarted)  # iterates until consumer_timeout_ms passes with nothing new
    committed = restarted.committed(TopicPartition(topic_name, 0))
    restarted.close()
    assert again == []
    assert committed == 1


def test_broker_cli_start_status_stop(tmp_path, topic_name):
    """``soccerkd broker start`` leaves a usable broker with the service's topics; ``stop`` ends
    exactly that JVM; with ``--data-dir`` a second start finds the topics and messages again."""
    from stream.dev.broker import pid_alive

    cli = [sys.executable, "-m", "stream.cli", "broker"]
    state = ["--state-dir", str(tmp_path / "broker")]
    start = cli + ["start", *state, "--port", "0", "--data-dir", str(tmp_path / "kept"), "--topics", f"{topic_name}:2"]
    started = subprocess.run(start, capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, started.stderr
    assert f"topic {topic_name}: created" in started.stdout
    bootstrap = started.stdout.strip().splitlines()[-1]
    assert bootstrap.startswith("127.0.0.1:")
    pid = int(started.stdout.split("pid ")[1].split(")")[0])
    try:
        status = subprocess.run(cli + ["status", *state], capture_output=True, text=True, timeout=60)
        assert status.returncode == 0 and "admin reachable" in status.stdout
        assert f"topic {topic_name}: 2 partition(s), 0 message(s)" in status.stdout
        producer = KafkaProducer(bootstrap_servers=bootstrap)
        producer.send(topic_name, b"ping", partition=0).get(timeout=30)
        producer.close()
        consumer = KafkaConsumer(topic_name, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                 consumer_timeout_ms=8000)
        assert [r.value for r in consumer] == [b"ping"]
        consumer.close()
    finally:
        stopped = subprocess.run(cli + ["stop", *state], capture_output=True, text=True, timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    assert not pid_alive(pid)
    assert (tmp_path / "kept").is_dir(), "stop keeps a --data-dir"
    after = subprocess.run(cli + ["status", *state], capture_output=True, text=True, timeout=60)
    assert after.returncode == 1 and "not running" in after.stdout
    again = subprocess.run(start, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr
    try:
        assert f"topic {topic_name}: exists" in again.stdout
        status = subprocess.run(cli + ["status", *state], capture_output=True, text=True, timeout=60)
        assert f"topic {topic_name}: 2 partition(s), 1 message(s)" in status.stdout, status.stdout
    finally:
        subprocess.run(cli + ["stop", *state], capture_output=True, text=True, timeout=60)


def test_the_watchdogs_view_of_kafka_pythons_fetch_state_reads_a_real_consumer(kafka_broker, topic_name):
    """stream.kafka.consumer.fetch_state reads kafka-python's private per-partition state (pinned 3.0.12):
    against a real consumer it must read, not fall back to "unreadable"."""
    from stream.kafka.consumer import fetch_state

    kafka_broker.create_topic(topic_name, partitions=1)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    producer.send(topic_name, value=b"x").get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap, enable_auto_commit=False,
                             auto_offset_reset="earliest")
    part = TopicPartition(topic_name, 0)
    try:
        consumer.assign([part])
        assert consumer.poll(timeout_ms=10_000, max_records=1)
        live = fetch_state(consumer, (topic_name, 0))
        assert "unreadable" not in live, live
        assert "fetchable=True" in live and "paused=False" in live and "leader=1" in live, live
        consumer.pause(part)
        paused = fetch_state(consumer, (topic_name, 0))
        assert "fetchable=False" in paused and "paused=True" in paused, paused
    finally:
        consumer.close()
