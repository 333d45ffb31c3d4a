"""Metrics object and probe endpoint: zero series for known reasons, liveness from the loop,
readiness answers. Values are read from the registry (``get_sample_value``), never from text."""

from __future__ import annotations

import doctest
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

import stream.app.http
from soccerkd.errors import ConfigError
from stream.app.http import LoopHealth, MetricsServer
from stream.app.metrics import DROP_REASONS, Metrics, envelope_reasons
from stream.config import StreamConfig
from stream.kafka.config import KafkaConfig


def test_docstring_examples_run() -> None:
    result = doctest.testmod(stream.app.http)
    assert result.attempted >= 2 and result.failed == 0


def test_every_known_reason_exists_at_zero_before_the_first_event() -> None:
    m = Metrics(CollectorRegistry())
    reasons = envelope_reasons()
    assert {"invalid_envelope", "bad_magic", "corrupt_frame", "size_mismatch", "truncated"} <= set(reasons)
    for reason in reasons:
        assert m.registry.get_sample_value("soccerkd_dlq_total", {"reason": reason}) == 0.0, reason
    for reason in DROP_REASONS:
        assert m.registry.get_sample_value("soccerkd_dropped_frames_total", {"reason": reason}) == 0.0, reason
    m.dead_lettered("bad_magic")
    assert m.registry.get_sample_value("soccerkd_dlq_total", {"reason": "bad_magic"}) == 1.0
    m.dead_lettered("a_reason_nobody_listed")  # still counted, just without a zero series before
    assert m.registry.get_sample_value("soccerkd_dlq_total", {"reason": "a_reason_nobody_listed"}) == 1.0


def test_reasons_can_be_given_explicitly() -> None:
    m = Metrics(CollectorRegistry(), dlq_reasons=["x"], drop_reasons=["y"])
    assert m.registry.get_sample_value("soccerkd_dlq_total", {"reason": "x"}) == 0.0
    assert m.registry.get_sample_value("soccerkd_dlq_total", {"reason": "bad_magic"}) is None
    assert m.registry.get_sample_value("soccerkd_dropped_frames_total", {"reason": "y"}) == 0.0


def test_loop_health_goes_stale_after_the_bound_and_recovers_on_a_tick() -> None:
    now = [0.0]
    health = LoopHealth(max_stall_s=5.0, clock=lambda: now[0])
    assert health.alive()[0]
    health.tick()
    now[0] = 5.0
    assert health.alive()[0]
    now[0] = 5.5
    ok, why = health.alive()
    assert not ok and "5.5 s ago" in why
    health.tick()
    assert health.alive()[0]
    with pytest.raises(ValueError, match="max_stall_s"):
        LoopHealth(max_stall_s=0)


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_healthz_and_readyz_answer_from_the_callbacks() -> None:
    now = [0.0]
    health = LoopHealth(max_stall_s=2.0, clock=lambda: now[0])
    state = {"ready": (False, "broker not reachable")}
    server = MetricsServer(Metrics(CollectorRegistry()), port=0, host="127.0.0.1", alive=health.alive,
                           ready=lambda: state["ready"]).start()
    try:
        health.tick()
        assert _get(server.port, "/healthz")[0] == 200
        now[0] = 10.0
        code, body = _get(server.port, "/healthz")
        assert code == 503 and "stalled" in body
        health.tick()
        assert _get(server.port, "/healthz")[0] == 200
        assert _get(server.port, "/readyz") == (503, "broker not reachable\n")
        state["ready"] = (True, "ready")
        assert _get(server.port, "/readyz") == (200, "ready\n")
        code, body = _get(server.port, "/metrics")
        assert code == 200 and 'soccerkd_dlq_total{reason="bad_magic"} 0.0' in body
    finally:
        server.stop()


def test_liveness_bound_must_stay_below_max_poll_interval() -> None:
    assert StreamConfig().liveness_timeout_s < KafkaConfig().max_poll_interval_ms / 1000
    with pytest.raises(ConfigError, match="liveness_timeout_s"):
        StreamConfig(kafka=KafkaConfig(max_poll_interval_ms=30_000), liveness_timeout_s=30.0)
    with pytest.raises(ConfigError, match="liveness_timeout_s"):
        StreamConfig(liveness_timeout_s=0)
