"""Health probes of a running service against a real broker of its own (the test kills it).

/healthz fails while the main loop is stuck (a predictor that blocks) and recovers when it moves;
/readyz fails once the broker is gone, while /healthz stays up (a lost broker is not a reason to
restart the pod).
"""

from __future__ import annotations

import threading
import time
import traceback
import urllib.error
import urllib.request

import pytest
from kafka_setup import private_broker

from stream.config import BatchingConfig, StreamConfig
from stream.core.smoothing import SmoothingConfig
from stream.core.windowing import WindowConfig
from stream.kafka.config import KafkaConfig

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError as err:
        return -1, str(err)


def wait_for(port: int, path: str, code: int, timeout: float,
             errors: list[BaseException] = []) -> tuple[int, str, float]:  # noqa: B006 (read only)
    t0 = time.monotonic()
    last = (-1, "")
    while time.monotonic() - t0 < timeout:
        if errors:
            raise AssertionError("the service stopped: " + "".join(traceback.format_exception(errors[0])))
        last = get(port, path)
        if last[0] == code:
            return last[0], last[1], time.monotonic() - t0
        time.sleep(0.2)
    raise AssertionError(f"{path} did not answer {code} within {timeout} s; last answer {last}")


class GatedPredictor:
    """A scripted predictor whose ``predict`` blocks while ``gate`` is closed."""

    def __init__(self) -> None:
        from stream.dev.testing import ScriptedPredictor

        self._inner = ScriptedPredictor()
        self.gate = threading.Event()
        self.gate.set()
        self.blocked = threading.Event()

    def predict(self, windows):
        if not self.gate.is_set():
            self.blocked.set()
            self.gate.wait(60)
        return self._inner.predict(windows)

    def __getattr__(self, name):  # input_spec, prepare, retain, release, ...
        return getattr(self._inner, name)


def test_liveness_follows_the_loop_and_readiness_follows_the_broker(tmp_path):
    from stream.dev.broker import free_port
    from stream.kafka.connection import make_producer
    from stream.app.metrics import Metrics
    from stream.core.wire import encode_frame_batch
    from stream.app.compose import build_service
    from stream.dev.testing import solid_batch
    from prometheus_client import CollectorRegistry

    broker = private_broker(tmp_path / "broker")
    try:
        broker.create_topic("frames", 1)
        for name in ("events", "frames-dlq"):
            broker.create_topic(name, 1)
        port = free_port()
        cfg = StreamConfig(
            kafka=KafkaConfig(bootstrap=broker.bootstrap, commit_interval_ms=300, session_timeout_ms=6000,
                              heartbeat_interval_ms=1000, max_poll_interval_ms=60_000),
            windows=WindowConfig(window_stride=2, reorder_tolerance=0, max_fill=0),
            smoothing=SmoothingConfig(on_threshold=0.6, off_threshold=0.4, min_windows=2, max_windows=4),
            batching=BatchingConfig(max_batch=4, max_wait_ms=20, max_pending_windows=16, resume_pending_windows=4),
            metrics_port=port, log_every_s=0.5, liveness_timeout_s=2.0)
        predictor = GatedPredictor()
        service = build_service(cfg, predictor=predictor, metrics=Metrics(CollectorRegistry()))
        errors: list[BaseException] = []

        def run() -> None:
            try:
                service.run()
            except BaseException as exc:  # reported by the assertions below
                errors.append(exc)

        thread = threading.Thread(target=run, name="serve", daemon=True)
        thread.start()
        try:
            wait_for(port, "/readyz", 200, 60)
            assert get(port, "/healthz")[0] == 200

            # A predictor call that hangs stalls the loop: liveness fails after the bound.
            predictor.gate.clear()
            producer = make_producer(cfg.kafka)
            for seq in range(0, 16, 4):
                producer.send("frames", key=b"cam", value=encode_frame_batch(solid_batch("cam", seq, [(200, 0, 0)] * 4)))
            producer.flush()
            producer.close()
            assert predictor.blocked.wait(30), "the predictor was never called"
            code, body, waited = wait_for(port, "/healthz", 503, 10)
            assert "stalled" in body and waited < 6
            predictor.gate.set()
            wait_for(port, "/healthz", 200, 10)

            # The broker goes away: not ready, but alive (restarting would not bring it back).
            # Stop it with nothing left to publish: a failed publish stops the service by design.
            deadline = time.monotonic() + 20
            while service.pipeline.pending:
                assert time.monotonic() < deadline, "the service did not catch up"
                time.sleep(0.1)
            time.sleep(1.5)  # a few commit intervals: the last events are acknowledged
            assert get(port, "/readyz")[0] == 200
            t_stop = time.monotonic()
            broker.stop()
            code, body, _ = wait_for(port, "/readyz", 503, 30, errors)
            waited = time.monotonic() - t_stop
            assert body.strip() == "broker not reachable"
            assert get(port, "/healthz")[0] == 200
            print(f"\n[probes] /readyz turned 503 {waited:.1f} s after the broker was stopped")
        finally:
            predictor.gate.set()
            service.stop()
            # With the broker gone the final commit and close time out; the thread is a daemon.
            thread.join(15)
    finally:
        broker.stop()
