"""The broker's pure parts and its errors, without starting a JVM."""

from __future__ import annotations

import pytest

from stream.dev.broker import BrokerState, LocalBroker, ensure_jars, random_cluster_id
from stream.errors import BrokerError


def test_missing_java_names_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no java, no mvn
    with pytest.raises(BrokerError, match=r"'java' was not found.*apt-get install -y openjdk-17"):
        LocalBroker(tmp_path / "data").start()


def test_missing_maven_names_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("SOCCERKD_CACHE", str(tmp_path / "cache"))  # nothing cached yet
    with pytest.raises(BrokerError, match=r"'mvn' was not found.*apt-get install -y maven"):
        ensure_jars("4.3.1")


def test_cached_jars_are_not_resolved_again(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # mvn would fail if it were called
    monkeypatch.setenv("SOCCERKD_CACHE", str(tmp_path))
    libs = tmp_path / "kafka-9.9.9" / "libs"
    libs.mkdir(parents=True)
    (libs / ".complete").write_text("9.9.9\n")
    assert ensure_jars("9.9.9") == libs


def test_bad_sizes_are_named(tmp_path):
    with pytest.raises(BrokerError, match="heap_mb.*64"):
        LocalBroker(tmp_path, heap_mb=64)
    with pytest.raises(BrokerError, match="message_max_bytes.*1000"):
        LocalBroker(tmp_path, message_max_bytes=1000)
    with pytest.raises(BrokerError, match="not been started"):
        LocalBroker(tmp_path).bootstrap


def test_cluster_id_is_kafka_shaped_and_state_round_trips(tmp_path):
    for _ in range(50):
        cid = random_cluster_id()
        assert len(cid) == 22 and not cid.startswith("-") and "=" not in cid
    state = BrokerState(pid=123, bootstrap="127.0.0.1:1", data_dir=str(tmp_path), version="4.3.1", started_at=1.0)
    state.save(tmp_path / "state.json")
    assert BrokerState.load(tmp_path / "state.json") == state
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(BrokerError, match="bad.json"):
        BrokerState.load(tmp_path / "bad.json")


def test_free_ports_are_below_the_ephemeral_range_and_free():
    """An outgoing connection's local port comes from the ephemeral range; a listening port picked
    there can be taken before the JVM binds it (a cluster start failed so)."""
    from stream.dev.broker import _ephemeral_low, free_port, port_free

    ports = [free_port() for _ in range(20)]
    assert all(10000 <= p < _ephemeral_low() and port_free(p) for p in ports), ports
