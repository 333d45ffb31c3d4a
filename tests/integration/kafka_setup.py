"""Setup shared by the integration tests (``from kafka_setup import ...``): fresh topics with a
test-speed Kafka config, and running a service in a thread until one of its metrics says it is
done. The tiny real checkpoint they use is :func:`stream.dev.checkpoints.tiny_checkpoint`."""

from __future__ import annotations

import threading
import time
import uuid
from contextlib import contextmanager
from typing import Any, Callable, Iterator


def fresh_kafka_config(broker: Any, prefix: str, *, frames_partitions: int = 1, **kafka: Any) -> Any:
    """New frames, events and dead-letter topics named ``<prefix>-<kind>-<uid>`` on ``broker``
    and a :class:`KafkaConfig` for them with a group of its own and test-speed timings (commits
    every 300 ms, a 6 s session); ``kafka`` overrides any setting."""
    from stream.kafka.config import KafkaConfig

    uid = uuid.uuid4().hex[:8]
    names = {k: f"{prefix}-{k}-{uid}" for k in ("frames", "events", "dlq")}
    for kind, name in names.items():
        broker.create_topic(name, partitions=frames_partitions if kind == "frames" else 1)
    settings = dict(bootstrap=broker.bootstrap, frames_topic=names["frames"], events_topic=names["events"],
                    dlq_topic=names["dlq"], group_id=f"{prefix}-{uid}", commit_interval_ms=300,
                    session_timeout_ms=6000, heartbeat_interval_ms=1000)
    return KafkaConfig(**{**settings, **kafka})


@contextmanager
def serving(service: Any, *, until: Callable[[], bool], timeout_s: float = 60.0,
            what: str = "the service did not get there") -> Iterator[threading.Thread]:
    """Run ``service`` in a thread until ``until()`` holds (failing after ``timeout_s``), yield,
    then stop it and wait for it to close."""
    thread = threading.Thread(target=service.run, name="serve", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout_s
        while not until():
            assert time.monotonic() < deadline, what
            assert thread.is_alive(), "the service stopped before it got there"
            time.sleep(0.2)
        yield thread
    finally:
        service.stop()
        thread.join(30)


def private_broker(data_dir: Any) -> Any:
    """A started :class:`~stream.dev.broker.LocalBroker` of one test's own (the caller stops it).
    One that cannot start fails the test under ``CI=true`` and skips it elsewhere, as the
    session's ``kafka_broker`` fixture does."""
    import os

    import pytest

    from stream.dev.broker import LocalBroker
    from stream.errors import BrokerError

    broker = LocalBroker(data_dir)
    try:
        broker.start()
    except BrokerError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"could not start a local Kafka broker under CI: {exc}", pytrace=False)
        pytest.skip(f"could not start a local Kafka broker: {exc}")
    return broker
