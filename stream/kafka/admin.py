"""Topic administration, in the style of ``kafka-topics`` (the ``soccerkd topics`` command).

The service's three topics have settings of their own: the frames topic carries JPEG batches of
up to 16 MiB (``max.message.bytes``) and keeps them only as long as a replay needs; events and
dead letters are small. :func:`default_topics` names and sizes them from a stream config.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from stream.errors import StreamError

FRAMES_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
FRAMES_RETENTION_MS = 60 * 60 * 1000   # an hour of frames: enough for any replay, small on disk


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 1
    config: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TopicInfo:
    name: str
    partitions: int
    config: dict[str, str]
    end_offsets: dict[int, int]

    @property
    def messages(self) -> int:
        return sum(self.end_offsets.values())

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "partitions": self.partitions, "messages": self.messages,
                "end_offsets": {str(p): o for p, o in sorted(self.end_offsets.items())}, "config": self.config}


def frames_topic_config(*, max_message_bytes: int = FRAMES_MAX_MESSAGE_BYTES,
                        retention_ms: int = FRAMES_RETENTION_MS) -> dict[str, str]:
    return {"max.message.bytes": str(max_message_bytes), "retention.ms": str(retention_ms)}


def default_topics(kafka: Any, *, frames_partitions: int = 4, events_partitions: int = 4,
                   retention_ms: int = FRAMES_RETENTION_MS) -> list[TopicSpec]:
    """The topics a service with ``kafka`` (a :class:`stream.config.KafkaConfig`) reads and writes."""
    specs = [TopicSpec(kafka.frames_topic, frames_partitions, frames_topic_config(retention_ms=retention_ms)),
             TopicSpec(kafka.events_topic, events_partitions),
             # a dead letter carries its whole frame batch
             TopicSpec(kafka.dlq_topic, 1, {"max.message.bytes": str(FRAMES_MAX_MESSAGE_BYTES)})]
    if kafka.predictions_topic:
        specs.append(TopicSpec(kafka.predictions_topic, events_partitions))
    return specs


def parse_topic_list(text: str) -> list[TopicSpec]:
    """``"frames:4,events:4,frames-dlq:1"`` -> specs; the frames-like settings go to names that
    the defaults give them (frames topic = the first one)."""
    specs = []
    for i, item in enumerate(part.strip() for part in text.split(",") if part.strip()):
        name, _, parts = item.partition(":")
        try:
            partitions = int(parts) if parts else 1
        except ValueError:
            raise StreamError(f"topic {item!r}: the partition count after ':' must be an integer") from None
        if not name or partitions < 1:
            raise StreamError(f"topic {item!r} must look like NAME[:PARTITIONS] with PARTITIONS >= 1")
        config = frames_topic_config() if i == 0 else {"max.message.bytes": str(FRAMES_MAX_MESSAGE_BYTES)}
        specs.append(TopicSpec(name, partitions, config))
    return specs


def unreachable_error(bootstrap: str, timeout_s: float, *, protocol: str = "PLAINTEXT",
                      client_certificate: bool = False) -> StreamError:
    """The one line for "no broker answered in time", naming the address. Over TLS a refused
    handshake (a CA that does not match, a client certificate the brokers require and did not get)
    ends the same way in kafka-python, so the line names those settings too."""
    if protocol.endswith("SSL"):
        hint = (f"is the broker running and does it speak {protocol} on that port? A refused TLS handshake ends "
                f"here too: check kafka.ssl_cafile (--ssl-cafile)")
        if not client_certificate:
            hint += ", and give a client certificate (--ssl-certfile, --ssl-keyfile) if the brokers require one"
    else:
        hint = "is the broker running and the address right? (a local one: soccerkd broker start)"
    return StreamError(f"cannot reach Kafka at {bootstrap} within {timeout_s:g} s: {hint}")


@contextmanager
def admin(bootstrap: str, *, timeout_s: float = 10.0, security: dict[str, Any] | None = None) -> Iterator[Any]:
    """A ``KafkaAdminClient`` that fails with one line naming ``bootstrap`` when no broker answers;
    ``security``: :func:`stream.kafka.connection.client_security` of the config."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        client = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="soccerkd-admin",
                                  bootstrap_timeout_ms=int(timeout_s * 1000),
                                  request_timeout_ms=int(timeout_s * 1000), **(security or {}))
    except (KafkaError, OSError) as exc:
        security = security or {}
        raise unreachable_error(bootstrap, timeout_s, protocol=security.get("security_protocol", "PLAINTEXT"),
                                client_certificate="ssl_certfile" in security) from exc
    try:
        yield client
    finally:
        client.close()


def list_topics(bootstrap: str, *, internal: bool = False, timeout_s: float = 10.0,
                security: dict[str, Any] | None = None) -> list[TopicInfo]:
    with admin(bootstrap, timeout_s=timeout_s, security=security) as client:
        names = sorted(n for n in client.list_topics() if internal or not n.startswith("__"))
    return describe(bootstrap, names, timeout_s=timeout_s, security=security) if names else []


def describe(bootstrap: str, names: list[str], *, timeout_s: float = 10.0,
             security: dict[str, Any] | None = None) -> list[TopicInfo]:
    """Partitions, non-default settings and end offsets of each topic; a missing one is an error."""
    from kafka import KafkaConsumer
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka.structs import TopicPartition

    with admin(bootstrap, timeout_s=timeout_s, security=security) as client:
        found = {t["name"]: t for t in client.describe_topics(names)}
        missing = [n for n in names if n not in found or not found[n].get("partitions")]
        if missing:
            raise StreamError(f"topic(s) {', '.join(map(repr, missing))} do not exist on {bootstrap} "
                              f"(soccerkd topics list shows what does)")
        described = client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    configs = _config_values(described)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None, enable_auto_commit=False,
                             bootstrap_timeout_ms=int(timeout_s * 1000), **(security or {}))
    try:
        parts = [TopicPartition(n, p["partition_index"]) for n in names for p in found[n]["partitions"]]
        ends = consumer.end_offsets(parts)
    finally:
        consumer.close()
    return [TopicInfo(n, len(found[n]["partitions"]), configs.get(n, {}),
                      {tp.partition: off for tp, off in ends.items() if tp.topic == n}) for n in names]


def _config_values(described: Any) -> dict[str, dict[str, str]]:
    """kafka-python's describe_configs result -> {topic: {key: value}} (shape varies by version)."""
    out: dict[str, dict[str, str]] = {}
    if isinstance(described, dict):
        for resources in described.values():
            for name, entries in (resources or {}).items():
                out[name] = {k: (v.get("value") if isinstance(v, dict) else v) for k, v in entries.items()}
    return out


def create(bootstrap: str, specs: list[TopicSpec], *, timeout_s: float = 10.0,
           security: dict[str, Any] | None = None, replication_factor: int = 1,
           min_insync_replicas: int | None = None) -> list[tuple[str, str]]:
    """Create each topic with ``replication_factor`` replicas (1: a single broker; production: 3,
    with ``min_insync_replicas=2``, which sets the topic's ``min.insync.replicas`` unless its
    spec does); returns ``(name, "created" | "exists")`` pairs. An existing topic is left as it is."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    if replication_factor < 1 or (min_insync_replicas is not None
                                  and not 1 <= min_insync_replicas <= replication_factor):
        raise StreamError(f"replication_factor must be >= 1 and min_insync_replicas between 1 and it, got "
                          f"{replication_factor!r} and {min_insync_replicas!r}")
    isr = {} if min_insync_replicas is None else {"min.insync.replicas": str(min_insync_replicas)}
    results = []
    with admin(bootstrap, timeout_s=timeout_s, security=security) as client:
        existing = set(client.list_topics())
        for spec in specs:
            if spec.name in existing:
                results.append((spec.name, "exists"))
                continue
            try:
                client.create_topics([NewTopic(spec.name, spec.partitions, replication_factor,
                                               topic_configs={**isr, **spec.config})])
                results.append((spec.name, "created"))
            except TopicAlreadyExistsError:
                results.append((spec.name, "exists"))
        _wait_visible(client, [s.name for s in specs], timeout_s)
    return results


def delete(bootstrap: str, names: list[str], *, timeout_s: float = 10.0,
           security: dict[str, Any] | None = None) -> None:
    with admin(bootstrap, timeout_s=timeout_s, security=security) as client:
        missing = sorted(set(names) - set(client.list_topics()))
        if missing:
            raise StreamError(f"topic(s) {', '.join(map(repr, missing))} do not exist on {bootstrap}")
        client.delete_topics(names)


def exists(bootstrap: str, name: str, *, timeout_s: float = 10.0, security: dict[str, Any] | None = None) -> bool:
    with admin(bootstrap, timeout_s=timeout_s, security=security) as client:
        return name in client.list_topics()


def _wait_visible(client: Any, names: list[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not set(names) <= set(client.list_topics()):
        if time.monotonic() > deadline:
            raise StreamError(f"topic(s) {names} did not appear within {timeout_s:g} s")
        time.sleep(0.1)


def missing_topic_message(topic: str, bootstrap: str, what: str) -> str:
    return (f"topic {topic!r} ({what}) does not exist on {bootstrap}, and the broker does not create topics: "
            f"create it with `soccerkd topics create {topic}` or all of the service's with "
            f"`soccerkd topics create --defaults`")
