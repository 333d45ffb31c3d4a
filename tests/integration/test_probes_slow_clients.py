"""Issue 22, item 4, end to end: a serve service on a real broker keeps answering its probes
while slow clients dribble requests at its metrics port (the old endpoint gave each of them one
of its 8 threads for as long as each byte came within 5 s, and refused the kubelet), and it keeps
consuming meanwhile."""

from __future__ import annotations

import re
import time

import pytest
from kafka_setup import fresh_kafka_config, serving

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]


def test_probes_answer_while_slow_clients_hold_the_metrics_port(kafka_broker, capfd, monkeypatch):
    import logging

    # A handler an earlier test left on a closed stream must not print "--- Logging error ---"
    # with a traceback: every traceback on stderr here is the endpoint's.
    monkeypatch.setattr(logging, "raiseExceptions", False)
    import sys
    from pathlib import Path

    from prometheus_client import CollectorRegistry

    from stream.app.compose import build_service
    from stream.app.metrics import Metrics
    from stream.config import BatchingConfig, StreamConfig
    from stream.core.smoothing import SmoothingConfig
    from stream.core.windowing import WindowConfig
    from stream.core.wire import encode_frame_batch
    from stream.dev.broker import free_port
    from stream.dev.testing import ScriptedPredictor, solid_batch
    from stream.kafka.connection import make_producer

    sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "stream"))
    from test_stream_metrics_server import Dribblers, get, probes_answered

    port = free_port()
    kafka = fresh_kafka_config(kafka_broker, "slowprobe")
    cfg = StreamConfig(kafka=kafka, windows=WindowConfig(window_stride=2, reorder_tolerance=0, max_fill=0),
                       smoothing=SmoothingConfig(on_threshold=0.6, off_threshold=0.4, min_windows=2, max_windows=4),
                       batching=BatchingConfig(max_batch=4, max_wait_ms=20, max_pending_windows=16,
                                               resume_pending_windows=4),
                       metrics_port=port, log_every_s=0.5)
    service = build_service(cfg, predictor=ScriptedPredictor(), metrics=Metrics(CollectorRegistry()))
    with serving(service, until=lambda: get(port, "/readyz")[0] == 200, what="/readyz never answered 200"):
        slow = Dribblers(port, 8, every_s=3.0)     # the case: a byte every 3 s
        slower = Dribblers(port, 40, every_s=0.5)  # and more than the endpoint keeps waiting
        try:
            time.sleep(1.0)
            took = probes_answered(port, 20, within_s=2.0)
            print(f"\n[probes] 20 probes under 48 slow clients: slowest {max(took) * 1000:.0f} ms")

            producer = make_producer(kafka)   # and the service goes on serving meanwhile
            for seq in range(0, 16, 4):
                producer.send(kafka.frames_topic, key=b"cam",
                              value=encode_frame_batch(solid_batch("cam", seq, [(200, 0, 0)] * 4)))
            producer.flush()
            producer.close()
            deadline = time.monotonic() + 30
            while True:
                code, body = get(port, "/metrics")
                m = re.search(rb"^soccerkd_frames_total (\S+)", body, re.M) if code == 200 else None
                if m and float(m.group(1)) >= 16:
                    break
                assert time.monotonic() < deadline, f"frames not counted: {code} {body[:200]!r}"
                time.sleep(0.3)
            probes_answered(port, 4, within_s=2.0)
        finally:
            slow.stop()
            slower.stop()
    err = capfd.readouterr().err
    assert "Traceback" not in err
