"""The service against the real broker: ingest -> serve -> events, SIGKILL + restart, DLQ, metrics.

The model is a tiny ``tsm_resnet18`` (32 px, 4 frames) whose head is zeroed with a constant bias,
so its output (class "kick" at p=0.87) does not depend on batch composition or numerics; with
``max_windows=4`` every 4 windows make one event, so the expected events of a stream are exactly
known by running the same pipeline offline over the same messages.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
from kafka_setup import fresh_kafka_config

from soccerkd.config import dump_config
from stream.config import BatchingConfig, ModelConfig, StreamConfig
from stream.core.ledger import SourceRef
from stream.core.pipeline import Pipeline
from stream.core.smoothing import SmoothingConfig
from stream.core.windowing import WindowConfig
from stream.core.wire import ActionEvent, encode_frame_batch
from stream.kafka.deadletters import DLQ_HEADERS
from stream.kafka.events import iter_records, read_events

pytestmark = pytest.mark.timeout(240)
ROOT = Path(__file__).resolve().parents[2]


def make_config(broker, checkpoint: Path, *, group: str | None = None, instance: str | None = None,
                metrics_port: int | None = None) -> StreamConfig:
    kafka = fresh_kafka_config(broker, "svc", frames_partitions=2, group_instance_id=instance,
                               **({"group_id": group} if group else {}))
    return StreamConfig(
        kafka=kafka,
        model=ModelConfig(checkpoint=checkpoint, device="cpu", amp="none", cpu_threads=1),
        # idle cameras are closed only after 10 min here: the offline oracle has no wall clock
        windows=WindowConfig(window_stride=2, reorder_tolerance=0, max_fill=0, idle_timeout_s=600),
        smoothing=SmoothingConfig(on_threshold=0.6, off_threshold=0.4, min_windows=2, max_windows=4),
        batching=BatchingConfig(max_batch=4, max_wait_ms=20, max_pending_windows=16, resume_pending_windows=4),
        metrics_port=metrics_port, log_every_s=1.0)


def write_video(path: Path, n: int, *, seed: int = 0) -> Path:
    import cv2

    rng = np.random.default_rng(seed)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (64, 48))
    for i in range(n):
        img = np.full((48, 64, 3), (i * 4) % 255, np.uint8)
        img[10:30, (i % 40):(i % 40) + 10] = rng.integers(0, 255, 3)
        out.write(img)
    out.release()
    return path


def ingest_clip(cfg: StreamConfig, video: Path, camera: str, *, frames_per_batch: int = 4, start_seq: int = 0) -> int:
    from stream.app.ingest import IngestOptions, ingest

    stats = ingest(IngestOptions(source=str(video), camera_id=camera, bootstrap=cfg.kafka.bootstrap,
                                 topic=cfg.kafka.frames_topic, frames_per_batch=frames_per_batch, pacing="fast",
                                 max_side=64, start_seq=start_seq), progress=False)
    return stats.frames


def expected_event_ids(cfg: StreamConfig) -> set[str]:
    """Run the same pipeline offline over every message of the frames topic."""
    from stream.inference.predictors import TorchPredictor

    pipe = Pipeline(TorchPredictor.from_checkpoint(cfg.model.checkpoint, device="cpu", amp="none"),
                    config=cfg.pipeline_config())
    ids = set()
    for rec in iter_records(cfg.kafka.bootstrap, cfg.kafka.frames_topic, timeout_s=None, idle_s=3):
        try:
            pipe.offer_bytes(rec.value, SourceRef(rec.topic, rec.partition, rec.offset))
        except Exception:
            continue
        ids |= {e.event.event_id for e in pipe.drain().events}
    return ids


def run_in_thread(cfg: StreamConfig):
    from stream.app.compose import build_service

    service = build_service(cfg)
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(service.run(max_seconds=120)), daemon=True)
    thread.start()
    return service, thread, result


def wait_ids(cfg: StreamConfig, expected: set[str], timeout: float = 60) -> list[ActionEvent]:
    return read_events(cfg.kafka.bootstrap, cfg.kafka.events_topic, timeout_s=timeout, idle_s=None,
                       until=lambda evs: expected <= {e.event_id for e in evs})


def serve_then_sigkill(cfg: StreamConfig, cfg_path: Path, tmp_path: Path, cams: tuple[str, ...], *,
                       after_events: int, isolation: str = "read_uncommitted") -> tuple[list[str], dict, list]:
    """Run ``soccerkd serve`` on what is on the topic, SIGKILL it once ``after_events`` events are
    readable, then ingest the rest of the match (frames 160..239) while it is down. Returns the
    serve command, its environment and the events seen before the kill."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "stream.cli", "serve", "--config", str(cfg_path)]
    log1 = open(tmp_path / "serve1.log", "w")
    first = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log1, stderr=subprocess.STDOUT)
    try:
        seen = read_events(cfg.kafka.bootstrap, cfg.kafka.events_topic, timeout_s=90, idle_s=None,
                           until=lambda evs: len(evs) >= after_events, isolation=isolation)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    for i, cam in enumerate(cams):
        ingest_clip(cfg, write_video(tmp_path / f"{cam}-2.avi", 80, seed=9 + i), cam, frames_per_batch=8,
                    start_seq=160)
    return cmd, env, seen


def serve_until(cmd: list[str], env: dict, log_path: Path, wait, *, stop_timeout_s: float = 60):
    """Start ``soccerkd serve`` (``cmd``), return ``wait()`` once it holds, after a SIGTERM that
    the service must answer with exit code 0 within ``stop_timeout_s`` (it is killed if anything
    fails first)."""
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        result = wait()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(stop_timeout_s) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return result


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_ingest_serve_reads_expected_events_and_metrics(kafka_broker, checkpoint, tmp_path):
    from stream.dev.broker import free_port

    port = free_port()
    cfg = make_config(kafka_broker, checkpoint, metrics_port=port)
    video = write_video(tmp_path / "clip.avi", 60)
    assert ingest_clip(cfg, video, "cam-a") == 60
    expected = expected_event_ids(cfg)
    # 60 frames, windows every 2 of 4 frames: starts 0..56 (29 windows) -> 7 closed events of 4 windows
    assert len(expected) == 7
    service, thread, result = run_in_thread(cfg)
    try:
        events = wait_ids(cfg, expected)
        got = {e.event_id for e in events}
        assert got == expected
        ev = events[0]
        assert ev.camera_id == "cam-a" and ev.label == "kick" and ev.model_name == "tsm_resnet18"
        assert abs(ev.confidence - np.exp(3) / (np.exp(3) + 3)) < 1e-4 and len(ev.checkpoint_sha256) == 64
        assert ev.end_seq - ev.start_seq == 9 and ev.end_capture_ts_ns > ev.start_capture_ts_ns
        # lag is sampled every log_every_s (1 s): events can arrive before the first sample
        deadline = time.monotonic() + 10
        while True:
            time.sleep(0.5)
            code, text = http_get(f"http://127.0.0.1:{port}/metrics")
            if "soccerkd_consumer_lag{partition=" in text or time.monotonic() > deadline:
                break
        assert code == 200
        assert "soccerkd_event_latency_seconds_bucket" in text and "soccerkd_event_latency_seconds_count 7.0" in text
        for name in ("soccerkd_stage_seconds_bucket{", "soccerkd_batch_size_bucket", "soccerkd_frames_total 60.0",
                     "soccerkd_windows_total", 'soccerkd_events_total{label="kick"} 7.0', "soccerkd_inflight_windows",
                     "soccerkd_consumer_lag{partition="):
            assert name in text, name
        assert http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        assert http_get(f"http://127.0.0.1:{port}/readyz") == (200, "ready\n")
    finally:
        service.stop()
        thread.join(30)
    assert not thread.is_alive() and result["events"] == 7


def test_corrupt_messages_go_to_dlq_and_the_rest_is_processed(kafka_broker, checkpoint):
    from stream.kafka.connection import make_producer
    from stream.dev.testing import solid_batch

    cfg = make_config(kafka_broker, checkpoint)
    producer = make_producer(cfg.kafka)
    bad_magic = b"NOPE" + b"\x00" * 40
    good = [solid_batch("cam-b", s, [(200, 30, 30)] * 4, width=40, height=32) for s in range(0, 40, 4)]
    one = solid_batch("cam-b", 40, [(1, 2, 3)], width=40, height=32)
    flen = len(one.frames[0])
    env = encode_frame_batch(one)
    corrupt = env[:-flen] + b"\x00" * 20 + env[-flen + 20:]  # JPEG header destroyed, envelope well-formed
    wrong_size = encode_frame_batch(solid_batch("cam-b", 41, [(1, 2, 3)], width=40, height=32)).replace(
        b"\x00\x00\x00\x28\x00\x00\x00\x20", b"\x00\x00\x00\x50\x00\x00\x00\x20", 1)  # header says 80 wide
    values = [encode_frame_batch(b) for b in good[:5]] + [bad_magic, corrupt, wrong_size] + \
             [encode_frame_batch(b) for b in good[5:]]
    for v in values:
        producer.send(cfg.kafka.frames_topic, key=b"cam-b", value=v, partition=0)
    producer.flush()
    producer.close()
    expected = expected_event_ids(cfg)
    assert len(expected) == 4  # 40 good frames: windows 0..36 (19) -> 4 events of 4 windows
    service, thread, _ = run_in_thread(cfg)
    try:
        assert {e.event_id for e in wait_ids(cfg, expected)} == expected
        dlq = list(iter_records(cfg.kafka.bootstrap, cfg.kafka.dlq_topic, timeout_s=20, idle_s=2))
    finally:
        service.stop()
        thread.join(30)
    assert [r.value for r in dlq] == [bad_magic, corrupt, wrong_size]
    headers = [dict(r.headers) for r in dlq]
    assert [h["reason"] for h in headers] == [b"bad_magic", b"not_jpeg", b"size_mismatch"]
    assert [h["source_offset"] for h in headers] == [b"5", b"6", b"7"]
    assert all(h["source_topic"] == cfg.kafka.frames_topic.encode() and h["source_partition"] == b"0"
               for h in headers)


def test_sigkill_mid_run_then_restart_loses_no_event(kafka_broker, checkpoint, tmp_path):
    cfg = make_config(kafka_broker, checkpoint, group=f"kill-{uuid.uuid4().hex[:6]}", instance="serve-0")
    cfg_path = tmp_path / "serve.yaml"
    dump_config(cfg, cfg_path)
    cams = ("cam-1", "cam-2")
    for i, cam in enumerate(cams):  # first part of the match; the rest arrives while the service is down
        ingest_clip(cfg, write_video(tmp_path / f"{cam}-1.avi", 160, seed=i), cam, frames_per_batch=8)
    cmd, env, seen = serve_then_sigkill(cfg, cfg_path, tmp_path, cams, after_events=6)
    expected = expected_event_ids(cfg)
    assert len(expected) == 2 * 29  # 240 frames -> windows 0..236 (119) -> 29 events per camera
    before = {e.event_id for e in read_events(cfg.kafka.bootstrap, cfg.kafka.events_topic, timeout_s=10, idle_s=1)}
    assert len(seen) >= 6 and before < expected, "the kill should land mid-run"
    events = serve_until(cmd, env, tmp_path / "serve2.log", lambda: wait_ids(cfg, expected, timeout=120))
    ids = [e.event_id for e in events]
    assert set(ids) == expected, (tmp_path / "serve2.log").read_text()[-3000:]
    by_id: dict[str, ActionEvent] = {}
    for e in events:  # duplicates are allowed, but must be the same event
        prev = by_id.setdefault(e.event_id, e)
        assert (prev.camera_id, prev.start_seq, prev.end_seq, prev.label) == (e.camera_id, e.start_seq, e.end_seq,
                                                                             e.label)
    assert "stopped:" in (tmp_path / "serve2.log").read_text()


def test_second_instance_takes_over_a_partition_without_losing_events(kafka_broker, checkpoint):
    """Cooperative rebalance: A owns both partitions, B joins; A commits and drops the revoked one,
    B rebuilds its windows from A's commit point. Every expected event appears."""
    from stream.kafka.connection import make_producer
    from stream.dev.testing import solid_batch

    cfg = make_config(kafka_broker, checkpoint)
    producer = make_producer(cfg.kafka)

    def send(first_seqs):
        for first in first_seqs:
            for part, cam in enumerate(("cam-p0", "cam-p1")):
                b = solid_batch(cam, first, [(120, 60, 30)] * 8, width=40, height=32)
                producer.send(cfg.kafka.frames_topic, key=cam.encode(), value=encode_frame_batch(b), partition=part)
        producer.flush()

    send(range(0, 160, 8))
    a, a_thread, _ = run_in_thread(cfg)
    b = b_thread = None
    try:
        read_events(cfg.kafka.bootstrap, cfg.kafka.events_topic, timeout_s=60, idle_s=None,
                    until=lambda evs: len(evs) >= 4)
        b, b_thread, _ = run_in_thread(cfg)
        deadline = time.monotonic() + 90
        def owned(svc):
            return set() if svc.delivery is None else set(svc.delivery.assigned)

        while time.monotonic() < deadline and not (len(owned(a)) == 1 and len(owned(b)) == 1):
            time.sleep(0.1)
        assert len(owned(a)) == 1 and len(owned(b)) == 1 and owned(a) != owned(b)
        send(range(160, 240, 8))
        producer.close()
        expected = expected_event_ids(cfg)
        assert len(expected) == 2 * 29
        events = wait_ids(cfg, expected, timeout=120)
    finally:
        for svc, th in ((a, a_thread), (b, b_thread)):
            if svc is not None:
                svc.stop()
                th.join(30)
    assert {e.event_id for e in events} == expected
    assert a.counts["events"] > 0 and b.counts["events"] > 0


def test_two_workers_share_the_group_process_every_window_once_and_commit_on_sigterm(kafka_broker, checkpoint,
                                                                                     tmp_path):
    """``soccerkd serve --workers 2``: two processes, one group, each with its own static member
    id; every expected event arrives exactly once, and one SIGTERM stops both after they commit.
    The workers join one after the other, so a rebalance moves a partition while the first one
    works: exactly-once delivery (read_committed) is what makes "exactly once" a fair assertion."""
    import dataclasses

    from kafka import KafkaConsumer, TopicPartition

    cfg = make_config(kafka_broker, checkpoint, group=f"workers-{uuid.uuid4().hex[:6]}", instance="host-a")
    cfg = dataclasses.replace(cfg, kafka=dataclasses.replace(cfg.kafka, delivery="exactly_once"))
    cfg_path = tmp_path / "serve.yaml"
    dump_config(cfg, cfg_path)
    cams = ("cam-1", "cam-2", "cam-3", "cam-4")
    for i, cam in enumerate(cams):
        ingest_clip(cfg, write_video(tmp_path / f"{cam}.avi", 80, seed=i), cam, frames_per_batch=8)
    expected = expected_event_ids(cfg)
    assert len(expected) == 4 * 9   # 80 frames -> windows 0..76 (39) -> 9 events of 4 windows per camera

    def every_event_then_a_commit():
        events = read_events(cfg.kafka.bootstrap, cfg.kafka.events_topic, timeout_s=150, idle_s=None,
                             until=lambda evs: len({e.event_id for e in evs}) >= len(expected),
                             isolation="read_committed")
        time.sleep(1.5)   # let a periodic commit go out, then stop both workers with one signal
        return events

    events = serve_until([sys.executable, "-m", "stream.cli", "serve", "--config", str(cfg_path), "--workers", "2"],
                         dict(os.environ, PYTHONUNBUFFERED="1"), tmp_path / "workers.log", every_event_then_a_commit,
                         stop_timeout_s=90)
    text = (tmp_path / "workers.log").read_text()
    ids = [e.event_id for e in read_events(cfg.kafka.bootstrap, cfg.kafka.events_topic, timeout_s=10, idle_s=2,
                                           isolation="read_committed")]
    assert set(ids) == expected and len(ids) == len(expected), text[-3000:]   # none lost, none twice
    assert {e.event_id for e in events} == expected
    assert "serve-w0" in text and "serve-w1" in text and "stopped:" in text
    assert text.count("stopping: running") == 2, text[-3000:]   # both ran their graceful shutdown
    consumer = KafkaConsumer(bootstrap_servers=cfg.kafka.bootstrap, group_id=cfg.kafka.group_id,
                             enable_auto_commit=False)
    try:
        tps = [TopicPartition(cfg.kafka.frames_topic, p) for p in (0, 1)]
        committed = {tp.partition: consumer.committed(tp) for tp in tps}
        ends = consumer.end_offsets(tps)
    finally:
        consumer.close()
    # both partitions were worked on and committed (a commit never passes an open segment's frames)
    assert all(committed[p] is not None and committed[p] > 0 for p in (0, 1)), (committed, ends)


def test_exactly_once_sigkill_then_restart_read_committed_sees_each_event_once(kafka_broker, checkpoint, tmp_path):
    """``kafka.delivery: exactly_once`` against the real broker (kafka-python 3.0.12, Kafka 4.3):
    outputs and offsets commit in one transaction; after a SIGKILL mid-run and a restart, a
    read_committed reader sees every expected event exactly once. Duplicates a read_uncommitted
    reader sees (from the aborted transaction) are printed for the record."""
    import dataclasses

    cfg = make_config(kafka_broker, checkpoint, group=f"eos-{uuid.uuid4().hex[:6]}", instance="eos-0")
    cfg = dataclasses.replace(cfg, kafka=dataclasses.replace(cfg.kafka, delivery="exactly_once"))
    cfg_path = tmp_path / "serve.yaml"
    dump_config(cfg, cfg_path)
    cams = ("cam-1", "cam-2")
    for i, cam in enumerate(cams):
        ingest_clip(cfg, write_video(tmp_path / f"{cam}-1.avi", 160, seed=i), cam, frames_per_batch=8)
    cmd, env, seen = serve_then_sigkill(cfg, cfg_path, tmp_path, cams, after_events=8, isolation="read_committed")
    expected = expected_event_ids(cfg)
    assert len(expected) == 2 * 29 and len(seen) >= 8
    serve_until(cmd, env, tmp_path / "serve2.log", lambda: read_events(
        cfg.kafka.bootstrap, cfg.kafka.events_topic, timeout_s=150, idle_s=None,
        until=lambda evs: {e.event_id for e in evs} >= expected, isolation="read_committed"))
    committed = [e.event_id for e in read_events(cfg.kafka.bootstrap, cfg.kafka.events_topic, timeout_s=20,
                                                 idle_s=3, isolation="read_committed")]
    raw = [e.event_id for e in read_events(cfg.kafka.bootstrap, cfg.kafka.events_topic, timeout_s=20, idle_s=3)]
    log = (tmp_path / "serve2.log").read_text()
    assert set(committed) == expected, log[-3000:]
    assert len(committed) == len(expected), f"{len(committed) - len(expected)} duplicates under read_committed"
    print(f"exactly_once: {len(expected)} events; read_uncommitted saw {len(raw)} records "
          f"({len(raw) - len(set(raw))} duplicates from the aborted transaction)")


def test_a_live_camera_outage_is_reconnected_and_serve_handles_the_frames_after_it(kafka_broker, checkpoint,
                                                                                    tmp_path):
    """An HTTP MJPEG camera drops out for 2.5 s and comes back: the ingester reconnects, numbers
    the frames after it from 0 again, and serve starts a new stream epoch and publishes events
    of the frames after the outage, none spanning it."""
    from stream.app.ingest import IngestOptions, ingest_many
    from stream.core.wire import decode_frame_batch
    from stream.app.metrics import IngestMetrics
    from stream.dev.cameras import MjpegServer

    cfg = make_config(kafka_broker, checkpoint)
    cam = MjpegServer(fps=25, size=(64, 48)).start()
    metrics, stop = IngestMetrics(), threading.Event()
    opts = IngestOptions(source=cam.url, camera_id="live-1", bootstrap=cfg.kafka.bootstrap,
                         topic=cfg.kafka.frames_topic, frames_per_batch=4, max_side=64, reconnect_backoff_s=0.2,
                         reconnect_backoff_max_s=0.5)
    results: list = []
    feeder = threading.Thread(target=lambda: results.extend(ingest_many([opts], metrics=metrics, stop=stop)))
    service, thread, _ = run_in_thread(cfg)
    feeder.start()
    try:
        time.sleep(4)
        cam.outage(2.5)
        time.sleep(5)
    finally:
        stop.set()
        feeder.join(30)
        cam.stop()
    (result,) = results
    assert result.error is None and result.stats.reconnects >= 1
    assert metrics.registry.get_sample_value("soccerkd_ingest_reconnects_total", {"camera": "live-1"}) >= 1
    sent = metrics.registry.get_sample_value("soccerkd_ingest_frames_total", {"camera": "live-1", "outcome": "sent"})
    batches = [decode_frame_batch(r.value) for r in iter_records(cfg.kafka.bootstrap, cfg.kafka.frames_topic,
                                                                 timeout_s=30, idle_s=3)]
    assert sum(len(b.frames) for b in batches) == sent == result.stats.frames
    restart = next(i for i, b in enumerate(batches) if i and b.first_seq == 0)
    gap_s = (batches[restart].capture_ts_ns[0] - batches[restart - 1].capture_ts_ns[-1]) / 1e9
    assert gap_s >= 2.0 and sum(len(b.frames) for b in batches[restart:]) >= 50
    epoch = batches[restart].capture_ts_ns[0]   # epochs are named by their first capture time
    try:
        after = read_events(cfg.kafka.bootstrap, cfg.kafka.events_topic, timeout_s=60, idle_s=None,
                            until=lambda evs: any(e.epoch == epoch for e in evs))
        assert service.metrics.registry.get_sample_value("soccerkd_stream_epochs_total", {"reason": "restart"}) >= 1
    finally:
        service.stop()
        thread.join(60)
    assert any(e.epoch == epoch and e.start_capture_ts_ns >= epoch for e in after)
    assert all(e.start_capture_ts_ns >= epoch or e.end_capture_ts_ns < epoch for e in after), "an event spans the outage"


def test_many_cameras_in_one_ingest_process_one_broken(kafka_broker, tmp_path):
    """``soccerkd ingest --sources``: three cameras, one shared producer; the broken one is
    reported and the other two are delivered in full."""
    from stream.core.wire import decode_frame_batch

    uid = uuid.uuid4().hex[:8]
    topic = f"frames-multi-{uid}"
    kafka_broker.create_topic(topic, partitions=2)
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text(
        "cameras:\n"
        f"  - {{camera_id: cam-a, source: '{write_video(tmp_path / 'a.avi', 60, seed=1)}'}}\n"
        f"  - {{camera_id: cam-b, source: '{write_video(tmp_path / 'b.avi', 40, seed=2)}', "
        "options: {frames_per_batch: 8}}\n"
        f"  - {{camera_id: cam-broken, source: '{tmp_path / 'missing.mp4'}'}}\n")
    proc = subprocess.run([sys.executable, "-m", "stream.cli", "ingest", "--sources", str(cameras), "--topic", topic,
                           "--pacing", "fast", "--frames-per-batch", "4", "--max-side", "64",
                           "--bootstrap", kafka_broker.bootstrap], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "cam-a: done: 60 frames in 15 batches" in proc.stdout and "cam-b: done: 40 frames in 5 batches" in proc.stdout
    assert "cam-broken: failed" in proc.stdout and "does not exist" in proc.stdout
    assert "Traceback" not in proc.stderr
    frames: dict[str, list[int]] = {}
    for rec in iter_records(kafka_broker.bootstrap, topic, timeout_s=30, idle_s=3):
        b = decode_frame_batch(rec.value)
        frames.setdefault(b.camera_id, []).extend(range(b.first_seq, b.first_seq + len(b.frames)))
    assert {cam: sorted(seqs) for cam, seqs in frames.items()} == {"cam-a": list(range(60)), "cam-b": list(range(40))}


@pytest.mark.badinput
def test_bad_messages_through_the_broker_are_dead_lettered_with_context_and_the_good_ones_served(
        kafka_broker, checkpoint, tmp_path):
    """Fifteen kinds from the bad-input corpus (a scan bomb and 4,096 tiny frames among them), each
    between two good messages, through the real broker into a running service: the loop keeps
    running, every good camera gets its events, and each dead letter carries its reason,
    exception class, source position and the original headers. (A null header value, which
    kafka-python's producer cannot write, is covered in tests/unit/stream/test_stream_hostile2.py.)"""
    import json as _json

    from kafka import KafkaProducer

    from stream.dev.badinput import bad_input_corpus
    from stream.dev.testing import solid_batch

    corpus = bad_input_corpus()
    kinds = ["tombstone", "bad_magic", "camera_ansi", "fps_1e300", "seq_2_64_minus_1", "timestamp_negative",
             "png_frame", "garbage_after_soi", "bomb_header_65000", "aspect_1x65000", "key_null", "truncated_payload",
             "progressive_scan_bomb", "decode_work_over_limit", "tiny_frames_4096"]   # the last three: issue 22
    cfg = make_config(kafka_broker, checkpoint)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, max_request_size=16 * 1024 * 1024)
    goods = []
    for i, kind in enumerate(kinds):
        value, key, _ = corpus[kind]
        for cam in (f"good-{i}a", f"good-{i}b"):
            producer.send(cfg.kafka.frames_topic, partition=0, key=cam.encode(),
                          value=encode_frame_batch(solid_batch(cam, 0, [(200, 30, 30)] * 12)))
            goods.append(cam)
            if cam.endswith("a"):
                producer.send(cfg.kafka.frames_topic, partition=0, key=key, value=value,
                              headers=[("origin", b"corpus")])
    producer.flush()
    producer.close()
    service, thread, _ = run_in_thread(cfg)
    try:
        dlq: list = []
        deadline = time.monotonic() + 90
        while len(dlq) < len(kinds) and time.monotonic() < deadline:
            dlq = list(iter_records(kafka_broker.bootstrap, cfg.kafka.dlq_topic, timeout_s=10, idle_s=3))
        service.stop()
        thread.join(60)
    finally:
        service.stop()
    assert not thread.is_alive()
    headers = [dict(r.headers) for r in dlq]
    assert [h["reason"].decode() for h in headers] == [corpus[k][2] for k in kinds]
    for r in dlq:   # the documented contract: stream.kafka.deadletters.DLQ_HEADERS, in order
        assert tuple(k for k, _ in r.headers if k != "value_replaced") == DLQ_HEADERS
    for h in headers:
        assert h["error_class"] and h["error_stack"] and h["consumer_group"] == cfg.kafka.group_id.encode()
        assert h["source_topic"] == cfg.kafka.frames_topic.encode() and h["service_version"] and h["dlq_time"]
        assert _json.loads(h["source_headers"]) == [["origin", "corpus"]]
    events = read_events(cfg.kafka.bootstrap, cfg.kafka.events_topic, timeout_s=30, idle_s=3)
    assert {e.camera_id for e in events} == set(goods)


def test_a_record_the_kafka_client_cannot_parse_is_dead_lettered_and_the_partition_goes_on(
        kafka_broker, checkpoint):
    """A header key that is not UTF-8 (librdkafka producers can write one): kafka-python 3.0.12
    raises CorruptRecordError from poll() at that record and its next poll hangs for minutes
    (benchmarks/repro_header_key.py), so the service crashed on it, on every restart. Now the
    record is dead-lettered as unreadable_record with its position, and the cameras after it on
    the same partition get their events."""
    from kafka import KafkaProducer

    from stream.dev.testing import solid_batch

    class NotUtf8(str):
        def encode(self, *args, **kwargs):
            return b"\xff\xfetrace"

    cfg = make_config(kafka_broker, checkpoint)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap)
    for cam in ("before", "poison", "after"):   # each in a batch of its own (see the README)
        producer.send(cfg.kafka.frames_topic, partition=0, key=cam.encode(),
                      value=encode_frame_batch(solid_batch(cam, 0, [(200, 30, 30)] * 12)),
                      headers=[(NotUtf8("trace"), b"1")] if cam == "poison" else [])
        producer.flush()
    producer.close()
    service, thread, _ = run_in_thread(cfg)
    try:
        dlq = []
        for rec in iter_records(kafka_broker.bootstrap, cfg.kafka.dlq_topic, timeout_s=60,
                                should_stop=lambda: bool(dlq)):
            dlq.append(rec)
        events = read_events(cfg.kafka.bootstrap, cfg.kafka.events_topic, timeout_s=60, idle_s=None,
                             until=lambda evs: {"before", "after"} <= {e.camera_id for e in evs})
    finally:
        service.stop()
        thread.join(60)
    assert not thread.is_alive()
    (letter,) = dlq
    headers = dict(letter.headers)
    assert headers["reason"] == b"unreadable_record" and headers["source_offset"] == b"1", headers
    assert b"UnicodeDecodeError" in headers["error"]
    assert {"before", "after"} <= {e.camera_id for e in events}


def test_a_frozen_broker_makes_serve_fail_stop_within_the_commit_timeout(checkpoint, tmp_path):
    """The broker stops answering (SIGSTOP: a hung JVM or a network partition) while serve has
    predictions in flight. The producer flush wedges; serve gives up after kafka.commit_timeout_s,
    commits nothing, logs and prints one "failing stop" line and exits 1 within seconds, instead of
    hanging (its shutdown was 30 s before the consumer's close got the same bound). A supervisor
    restarts it, and the restart replays from the last commit."""
    from dataclasses import replace

    from stream.dev.broker import LocalBroker

    broker = LocalBroker(tmp_path / "broker").start()   # its own: it is frozen
    try:
        cfg = make_config(broker, checkpoint)
        broker.create_topic(f"{cfg.kafka.events_topic}-predictions", partitions=1)
        cfg = replace(cfg, kafka=replace(cfg.kafka, commit_timeout_s=4.0,   # every window is a send
                                         predictions_topic=f"{cfg.kafka.events_topic}-predictions"))
        ingest_clip(cfg, write_video(tmp_path / "cam.avi", 3000), "cam-1", frames_per_batch=8)
        cfg_path = tmp_path / "serve.yaml"
        dump_config(cfg, cfg_path)
        serve = subprocess.Popen([sys.executable, "-m", "stream.cli", "serve", "--config", str(cfg_path),
                                  "--max-seconds", "200"], cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
        lines = []
        for line in serve.stdout:   # freeze once windows are being published
            lines.append(line)
            if "windows=" in line and "windows=0 " not in line:
                break
        os.kill(broker.process.pid, signal.SIGSTOP)
        t0 = time.monotonic()
        try:
            rest, _ = serve.communicate(timeout=60)
        finally:
            os.kill(broker.process.pid, signal.SIGCONT)
        took, out = time.monotonic() - t0, "".join(lines) + rest
        assert serve.returncode == 1, out[-3000:]
        # each of the flush, leaving the group and closing the producer is bounded by the time-out
        assert took < 3 * 4.0 + 8, (took, out[-3000:])
        assert "ERROR MainProcess soccerkd.serve: failing stop: " in out and "Traceback" not in out, out[-3000:]
        (final,) = [x for x in out.splitlines() if x.startswith("soccerkd: error:")]
        assert "did not finish within 4 s (kafka.commit_timeout_s); failing stop (exit 1)" in final, final
    finally:
        broker.stop()
