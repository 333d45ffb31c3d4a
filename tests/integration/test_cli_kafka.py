"""The Kafka-facing commands through the real CLI (subprocess) against the real broker: topics,
bootstrap from the environment, missing topics said at once, events as NDJSON, Ctrl-C -> 130,
and /readyz naming a missing topic."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def soccerkd(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "stream.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, **(env or {})))


def test_topics_create_list_describe_delete(kafka_broker, topic_name):
    env = {"SOCCERKD_BOOTSTRAP": kafka_broker.bootstrap}   # no --bootstrap: the environment is used
    made = soccerkd("topics", "create", topic_name, "--partitions", "3", "--retention-ms", "60000", env=env)
    assert made.returncode == 0 and f"{topic_name}: created (3 partition(s))" in made.stdout, made.stderr
    assert f"(from $SOCCERKD_BOOTSTRAP)" in made.stderr
    again = soccerkd("topics", "create", topic_name, env=env)
    assert again.returncode == 0 and f"{topic_name}: exists" in again.stdout
    listed = json.loads(soccerkd("topics", "list", "--json", env=env).stdout)
    mine = next(t for t in listed if t["name"] == topic_name)
    assert mine["partitions"] == 3 and mine["messages"] == 0
    assert mine["config"]["max.message.bytes"] == str(16 * 1024 * 1024) and mine["config"]["retention.ms"] == "60000"
    assert not any(t["name"].startswith("__") for t in listed)
    described = soccerkd("topics", "describe", topic_name, env=env)
    assert "partition 2: end offset 0" in described.stdout and "retention.ms=60000" in described.stdout
    gone = soccerkd("topics", "delete", topic_name, env=env)
    assert gone.returncode == 0
    missing = soccerkd("topics", "describe", topic_name, env=env)
    assert missing.returncode == 2 and f"'{topic_name}' do not exist" in missing.stderr


def test_topics_create_defaults_from_a_stream_config(kafka_broker, tmp_path, topic_name):
    from soccerkd.config import dump_config
    from stream.config import StreamConfig
    from stream.kafka.config import KafkaConfig

    kafka = KafkaConfig(bootstrap=kafka_broker.bootstrap, frames_topic=f"{topic_name}-f",
                        events_topic=f"{topic_name}-e", dlq_topic=f"{topic_name}-d")
    cfg = tmp_path / "serve.yaml"
    dump_config(StreamConfig(kafka=kafka), cfg)
    made = soccerkd("topics", "create", "--defaults", "--config", str(cfg), "--partitions", "2")
    assert made.returncode == 0, made.stderr
    assert "(from the config's kafka.bootstrap)" in made.stderr
    for name in (kafka.frames_topic, kafka.events_topic, kafka.dlq_topic):
        assert f"{name}: created" in made.stdout


def test_missing_topics_are_said_at_once(kafka_broker, tmp_path):
    env = {"SOCCERKD_BOOTSTRAP": kafka_broker.bootstrap}
    t0 = time.monotonic()
    ingest = soccerkd("ingest", "--source", "0", "--camera-id", "c", "--topic", "no-such-frames", env=env)
    tail = soccerkd("events", "tail", "--topic", "no-such-events", env=env)
    assert time.monotonic() - t0 < 60
    for proc, topic in ((ingest, "no-such-frames"), (tail, "no-such-events")):
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert f"topic '{topic}' (--topic) does not exist on {kafka_broker.bootstrap}" in proc.stderr
        assert f"soccerkd topics create {topic}" in proc.stderr


def test_events_tail_json_is_ndjson_and_ctrl_c_exits_130(kafka_broker, topic_name):
    from kafka import KafkaProducer

    from stream.core.wire import ActionEvent

    kafka_broker.create_topic(topic_name)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    sent = [ActionEvent(event_id=f"e{i}", camera_id="cam-1", label="kick", confidence=0.9, start_seq=i,
                        end_seq=i + 8, start_capture_ts_ns=0, end_capture_ts_ns=1, model_name="m",
                        checkpoint_sha256="0" * 64, emitted_at=time.time()) for i in range(3)]
    for ev in sent:
        producer.send(topic_name, value=ev.to_json())
    producer.flush()
    producer.close()
    done = soccerkd("events", "tail", "--topic", topic_name, "--from-beginning", "--json", "--max-events", "3",
                    "--bootstrap", kafka_broker.bootstrap)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [json.loads(line)["event_id"] for line in lines] == ["e0", "e1", "e2"]
    live = subprocess.Popen([sys.executable, "-m", "stream.cli", "events", "tail", "--topic", topic_name,
                             "--bootstrap", kafka_broker.bootstrap], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert live.stdout.readline().startswith("emitted")   # the table's header: it is reading now
    time.sleep(1)
    live.send_signal(signal.SIGINT)
    _, err = live.communicate(timeout=60)
    assert live.returncode == 130 and "Traceback" not in err, err


def test_serve_waits_for_a_missing_topic_says_so_once_and_readyz_names_it(kafka_broker, tmp_path, topic_name):
    from soccerkd.config import dump_config
    from stream.dev.broker import free_port
    from stream.config import ModelConfig, StreamConfig
    from stream.kafka.config import KafkaConfig

    port = free_port()
    cfg = tmp_path / "serve.yaml"
    dump_config(StreamConfig(kafka=KafkaConfig(bootstrap=kafka_broker.bootstrap, frames_topic=topic_name),
                             model=ModelConfig(checkpoint=ROOT / "stream/assets/demo_student.pt", device="cpu")), cfg)
    proc = subprocess.Popen([sys.executable, "-m", "stream.cli", "serve", "--config", str(cfg), "--metrics-port",
                             str(port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, body = time.monotonic() + 90, ""
        while time.monotonic() < deadline and "missing" not in body:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2)
            except urllib.error.HTTPError as exc:
                body = exc.read().decode()
            except OSError:
                pass
            time.sleep(0.5)
        assert body.strip() == f"topic '{topic_name}' missing"
        time.sleep(3)   # several more checks of the topic: still one line
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert err.count(f"topic '{topic_name}' (kafka.frames_topic) does not exist") == 1, err[-3000:]
    assert "Updated metadata" not in err   # the Kafka client's INFO chatter is off
