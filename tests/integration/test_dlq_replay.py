"""Issue 22, item 8: dead letters go back. The real service dead-letters a frame batch of a newer
envelope version; ``soccerkd dlq list`` shows it, ``soccerkd dlq replay`` (the real CLI, on the
real broker) re-publishes it to the frames topic with its original key, value and headers plus
the replay marker, and the service rejecting it again shows the
round trip. A dead letter whose value was not kept is skipped, and said so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka_setup import fresh_kafka_config, serving

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
ROOT = Path(__file__).resolve().parents[2]


def soccerkd(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "stream.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ))


def test_a_dead_lettered_newer_envelope_is_replayed_as_it_came(kafka_broker, tmp_path):
    from prometheus_client import CollectorRegistry

    from soccerkd.config import dump_config
    from stream.app.compose import build_service
    from stream.app.metrics import Metrics
    from stream.config import StreamConfig
    from stream.core.wire import encode_frame_batch
    from stream.dev.testing import ScriptedPredictor, solid_batch
    from stream.kafka.connection import make_producer
    from stream.kafka.deadletters import DeadLetters
    from stream.kafka.dlq import read_dead_letters
    from stream.kafka.events import iter_records
    from stream.core.ledger import SourceRef
    from stream.core.wire import UnsupportedVersionError

    kafka = fresh_kafka_config(kafka_broker, "dlqreplay")
    config = tmp_path / "serve.yaml"
    dump_config(StreamConfig(kafka=kafka), config)
    value = bytearray(encode_frame_batch(solid_batch("cam7", 0, [(10, 200, 30)] * 4)))
    value[4] = 2   # schema version 2: what a newer ingester writes before the service reads it
    value = bytes(value)
    headers = [("trace", b"abc-123"), ("empty", b""), ("unicode", "gr\u00fc\u00df".encode())]

    producer = make_producer(kafka)
    producer.send(kafka.frames_topic, key=b"cam7", value=value, headers=headers).get(timeout=30)

    registry = CollectorRegistry()
    service = build_service(StreamConfig(kafka=kafka), predictor=ScriptedPredictor(), metrics=Metrics(registry))

    def dead_lettered() -> float:
        return registry.get_sample_value("soccerkd_dlq_total", {"reason": "unsupported_version"}) or 0.0

    with serving(service, until=lambda: dead_lettered() >= 1, what="the batch was not dead-lettered"):
        # One more dead letter, written by the real DeadLetters class: its value was too large to keep.
        DeadLetters(producer, topic=kafka.dlq_topic, group="g", max_request_size=DeadLetters.HEADROOM + 8).send(
            type("Rec", (), {"key": b"cam8", "value": b"x" * 100, "headers": [], "timestamp": 0})(),
            SourceRef(kafka.frames_topic, 0, 99), UnsupportedVersionError("schema version 3 is not supported"))
        producer.flush()

        listed = soccerkd("dlq", "list", "--config", str(config))
        assert listed.returncode == 0, listed.stderr
        lines = listed.stdout.splitlines()
        assert lines[0].split()[:4] == ["partition", "offset", "reason", "camera"]
        assert lines[1].split()[:6] == ["0", "0", "unsupported_version", "cam7", "0", "yes"], lines
        assert "schema version 2 is not supported" in lines[1]
        assert lines[2].split()[:6] == ["0", "1", "unsupported_version", "cam8", "0", "no"], lines
        assert lines[-1] == "2 dead letter(s)"

        dry = soccerkd("dlq", "replay", "--config", str(config), "--reason", "unsupported_version", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "would replay 1 of 2 chosen dead letter(s)" in dry.stdout and "skip    " in dry.stdout
        assert "value not kept" in dry.stdout
        assert len(list(iter_records(kafka.bootstrap, kafka.frames_topic, idle_s=1.5, timeout_s=20))) == 1

        done = soccerkd("dlq", "replay", "--config", str(config), "--reason", "unsupported_version",
                        "--reason", "size_mismatch")
        assert done.returncode == 0, done.stderr
        assert f"replayed 1 of 2 chosen dead letter(s) to {kafka.frames_topic} (unsupported_version: 1)" in done.stdout

        frames = list(iter_records(kafka.bootstrap, kafka.frames_topic, idle_s=1.5, timeout_s=20))
        assert len(frames) == 2
        original, replayed = frames
        marker = ("soccerkd_replayed_from", f"{kafka.dlq_topic}@0:0".encode())
        assert (replayed.key, replayed.value) == (original.key, original.value) == (b"cam7", value)
        assert list(original.headers) == headers
        assert list(replayed.headers) == headers + [marker]

        # Still a version the service does not read: it comes back, and the trip shows.
        deadline = time.monotonic() + 30
        while dead_lettered() < 2:
            assert time.monotonic() < deadline, "the replayed batch was not dead-lettered again"
            time.sleep(0.2)
    producer.close()
    letters = list(read_dead_letters(kafka.bootstrap, kafka.dlq_topic))
    assert [(d.offset, d.replays, d.problem is None) for d in letters] == [(0, 0, True), (1, 0, False), (2, 1, True)]
    assert letters[2].replay_headers()[-2:] == [marker, ("soccerkd_replayed_from", f"{kafka.dlq_topic}@0:2".encode())]
    as_json = soccerkd("dlq", "list", "--config", str(config), "--offset", "0:2", "--json")
    assert [json.loads(x)["replays"] for x in as_json.stdout.splitlines()] == [1], as_json.stderr
