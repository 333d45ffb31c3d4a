"""The local cluster's pure parts (node configs, state, topic settings), without starting a JVM."""

from __future__ import annotations

import pytest

from stream.dev.broker import BrokerState, LocalBroker
from stream.dev.cluster import LocalCluster
from stream.errors import BrokerError, StreamError


def props(node: LocalBroker) -> dict[str, str]:
    node._write_config(controller_port=node._controller_port)
    return dict(line.split("=", 1) for line in node.properties_path.read_text().splitlines() if "=" in line)


def test_brokers_3_is_a_cluster_of_three_voters_with_replicated_internal_topics(tmp_path):
    cluster = LocalBroker(tmp_path, brokers=3)
    assert isinstance(cluster, LocalCluster) and len(cluster.nodes) == 3
    assert (cluster.replication_factor, cluster.min_insync_replicas) == (3, 2)
    configs = [props(node) for node in cluster.nodes]
    voters = {c["controller.quorum.voters"] for c in configs}
    assert len(voters) == 1 and len(voters.pop().split(",")) == 3   # every node: the same 3 voters
    assert [c["node.id"] for c in configs] == ["1", "2", "3"]
    assert len({c["listeners"] for c in configs}) == 3 and len(cluster.bootstrap.split(",")) == 3
    for c in configs:
        assert "controller.quorum.bootstrap.servers" not in c and c["process.roles"] == "broker,controller"
        assert c["offsets.topic.replication.factor"] == c["transaction.state.log.replication.factor"] == "3"
        assert c["transaction.state.log.min.isr"] == c["min.insync.replicas"] == "2"
        assert c["default.replication.factor"] == "3" and c["unclean.leader.election.enable"] == "false"
    assert str(tmp_path / "node-2" / "kraft-logs") == configs[1]["log.dirs"]


def test_one_broker_keeps_its_single_node_settings(tmp_path):
    broker = LocalBroker(tmp_path)
    assert type(broker) is LocalBroker
    c = props(broker)
    assert c["offsets.topic.replication.factor"] == "1" and "controller.quorum.voters" not in c
    with pytest.raises(BrokerError, match="at least 2 brokers"):
        LocalCluster(tmp_path, brokers=1)


def test_cluster_ports_follow_a_given_first_port(tmp_path):
    cluster = LocalCluster(tmp_path, port=29092)
    assert cluster.bootstrap == "127.0.0.1:29092,127.0.0.1:29093,127.0.0.1:29094"


def test_cluster_state_records_every_pid(tmp_path):
    state = BrokerState(pid=1, bootstrap="a:1,b:2", data_dir=str(tmp_path), version="4.3.1", started_at=1.0,
                        pids=(1, 2, 3))
    state.save(tmp_path / "state.json")
    assert BrokerState.load(tmp_path / "state.json") == state and state.all_pids == (1, 2, 3)
    single = BrokerState(pid=7, bootstrap="a:1", data_dir=str(tmp_path), version="4.3.1", started_at=1.0)
    assert single.all_pids == (7,)


def test_topic_replication_settings_are_checked_before_any_connection():
    from stream.kafka.admin import TopicSpec, create

    with pytest.raises(StreamError, match="min_insync_replicas"):
        create("127.0.0.1:1", [TopicSpec("t")], replication_factor=3, min_insync_replicas=4)
    with pytest.raises(StreamError, match="replication_factor"):
        create("127.0.0.1:1", [TopicSpec("t")], replication_factor=0)
