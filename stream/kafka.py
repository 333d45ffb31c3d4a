"""Thin kafka-python adapters: consumer/producer factories, rebalance listener, DLQ records, commits.

Settings for multi-MB frame messages (see ``/work/shared/notes/kafka.md``): the producer's
``max_request_size`` is raised to 8 MiB and frames are not compressed (already JPEG); the consumer
fetches up to 16 MiB per partition and at most ``max_poll_records`` (16) messages per poll so a
poll never holds hundreds of MB. Consumers use manual commits and the cooperative-sticky
assignor; ``group_instance_id`` turns on static membership (a restarted instance takes its
partitions back without a rebalance).

**Rebalance rule.** Revoked partitions: waiting windows of their cameras are run, the events
published and acknowledged, offsets committed (with resume metadata), then every window and
smoother state of those cameras is *dropped* - open windows are not flushed, because the new
owner rebuilds them from the committed offset and resume points, which yields the same windows
and event ids. Lost partitions (session expired): state is dropped without committing.
Assigned partitions: the committed metadata is read and replay starts at each camera's resume
point.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from stream.config import KafkaConfig
from stream.pipeline import SourceRef, TopicPartition

if TYPE_CHECKING:
    from kafka import KafkaConsumer, KafkaProducer

# The headers of every dead letter, in order (see dlq_headers), plus "value_replaced" when the
# value was too large for the dead-letter topic and was dropped.
DLQ_HEADERS = ("source_topic", "source_partition", "source_offset", "reason", "error", "error_class", "error_stack",
               "source_timestamp_ms", "source_headers", "consumer_group", "service_version", "dlq_time")


def client_security(cfg: KafkaConfig) -> dict[str, Any]:
    """kafka-python's security arguments for ``cfg``, reading passwords from the environment
    variable or file the config names (never from the config itself, never logged)."""
    import os
    from pathlib import Path

    from soccerkd.errors import ConfigError

    if cfg.security_protocol == "PLAINTEXT":
        return {}
    out: dict[str, Any] = {"security_protocol": cfg.security_protocol}
    if cfg.security_protocol.endswith("SSL"):
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(cfg, name)
            if path is not None:
                if not Path(path).is_file():
                    raise ConfigError(f"kafka.{name} {str(path)!r} does not exist")
                out[name] = str(path)
        out["ssl_check_hostname"] = cfg.ssl_check_hostname
        if cfg.ssl_password_env:
            if cfg.ssl_password_env not in os.environ:
                raise ConfigError(f"kafka.ssl_password_env names ${cfg.ssl_password_env}, which is not set")
            out["ssl_password"] = os.environ[cfg.ssl_password_env]
        if cfg.ssl_certfile is not None:
            _check_client_certificate(cfg, out.get("ssl_password"))
    if cfg.security_protocol.startswith("SASL"):
        if cfg.sasl_password_file is not None:
            try:
                password = Path(cfg.sasl_password_file).read_text().splitlines()[0]
            except (OSError, IndexError) as exc:
                raise ConfigError(f"kafka.sasl_password_file {str(cfg.sasl_password_file)!r} cannot be read "
                                  f"or is empty") from exc
        elif os.environ.get(cfg.sasl_password_env):
            password = os.environ[cfg.sasl_password_env]
        else:
            raise ConfigError(f"SASL needs a password: set ${cfg.sasl_password_env} or kafka.sasl_password_file")
        out.update(sasl_mechanism=cfg.sasl_mechanism, sasl_plain_username=cfg.sasl_username,
                   sasl_plain_password=password)
    return out


def _check_client_certificate(cfg: KafkaConfig, password: str | None) -> None:
    """Load the client certificate and key once, up front: a wrong password or a key that does not
    match ends in one line naming the files, instead of TLS handshakes that fail until the client
    times out (and, with no password for an encrypted key, instead of OpenSSL prompting for one
    on the terminal)."""
    import ssl

    from soccerkd.errors import ConfigError

    try:   # a callable, so that a missing password never prompts
        ssl.create_default_context().load_cert_chain(str(cfg.ssl_certfile), None if cfg.ssl_keyfile is None
                                                     else str(cfg.ssl_keyfile), password=lambda: password or "")
    except ssl.SSLError as exc:
        hint = (f"check the password in ${cfg.ssl_password_env} (kafka.ssl_password_env)" if password is not None
                else "if the key is encrypted, set kafka.ssl_password_env (--ssl-password-env) to the name of a "
                     "variable holding its password")
        raise ConfigError(f"the client certificate kafka.ssl_certfile {str(cfg.ssl_certfile)!r} and its key "
                          f"kafka.ssl_keyfile {str(cfg.ssl_keyfile)!r} do not load ({exc.reason or exc}): "
                          f"{hint}; also check that the key belongs to the certificate") from exc


@contextmanager
def _connecting(cfg: KafkaConfig) -> Iterator[None]:
    """Turn kafka-python's bootstrap time-out into one line that names the address."""
    from kafka.errors import KafkaTimeoutError

    from stream.topics import unreachable_error

    try:
        yield
    except KafkaTimeoutError as exc:
        raise unreachable_error(f"{cfg.bootstrap} (kafka.bootstrap)", cfg.connect_timeout_s,
                                protocol=cfg.security_protocol,
                                client_certificate=cfg.ssl_certfile is not None) from exc


def make_consumer(cfg: KafkaConfig, *, client_id: str = "soccerkd-serve") -> "KafkaConsumer":
    from kafka import KafkaConsumer
    from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor

    kwargs: dict[str, Any] = dict(
        bootstrap_servers=cfg.bootstrap.split(","), group_id=cfg.group_id, client_id=client_id,
        bootstrap_timeout_ms=int(cfg.connect_timeout_s * 1000),
        enable_auto_commit=False, auto_offset_reset=cfg.auto_offset_reset,
        partition_assignment_strategy=(CooperativeStickyAssignor,),
        max_poll_records=cfg.max_poll_records, max_partition_fetch_bytes=cfg.max_partition_fetch_bytes,
        fetch_max_bytes=max(cfg.max_partition_fetch_bytes, 50 * 1024 * 1024),
        session_timeout_ms=cfg.session_timeout_ms, heartbeat_interval_ms=cfg.heartbeat_interval_ms,
        max_poll_interval_ms=cfg.max_poll_interval_ms,
        # Full fetch requests, not KIP-227 sessions: after a broker restart, with partitions paused,
        # resumed and moved, kafka-python 3.0.12 once stopped fetching one assigned partition for
        # good (the chaos tier found it). A full fetch names every partition each time; at a few
        # partitions per member its cost is nil.
        enable_incremental_fetch_sessions=False, **client_security(cfg))
    if cfg.group_instance_id:
        kwargs["group_instance_id"] = cfg.group_instance_id
    with _connecting(cfg):
        return KafkaConsumer(**kwargs)


def make_producer(cfg: KafkaConfig, *, client_id: str = "soccerkd", transactional: bool = False) -> "KafkaProducer":
    from kafka import KafkaProducer

    extra: dict[str, Any] = {}
    if transactional:
        extra = dict(transactional_id=cfg.resolved_transactional_id(), enable_idempotence=True)
    with _connecting(cfg):
        producer = KafkaProducer(bootstrap_servers=cfg.bootstrap.split(","), client_id=client_id, acks="all",
                                 max_request_size=cfg.max_request_size, linger_ms=cfg.linger_ms,
                                 batch_size=256 * 1024, compression_type=None,
                                 bootstrap_timeout_ms=int(cfg.connect_timeout_s * 1000), **extra,
                                 **client_security(cfg))
        if transactional:
            producer.init_transactions()   # fences an older producer of the same transactional id
        return producer


def make_listener(*, revoked: Callable[[list[TopicPartition]], None],
                  assigned: Callable[[list[TopicPartition]], None],
                  lost: Callable[[list[TopicPartition]], None]) -> Any:
    """A ``ConsumerRebalanceListener`` calling the three callbacks with ``(topic, partition)`` lists."""
    from kafka import ConsumerRebalanceListener

    def tps(parts: Iterable[Any]) -> list[TopicPartition]:
        return sorted((p.topic, p.partition) for p in parts)

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked_parts: Any) -> None:
            revoked(tps(revoked_parts))

        def on_partitions_assigned(self, assigned_parts: Any) -> None:
            assigned(tps(assigned_parts))

        def on_partitions_lost(self, lost_parts: Any) -> None:
            lost(tps(lost_parts))

    return Listener()


def dlq_headers(ref: SourceRef, error: BaseException, *, record: Any = None, group: str = "",
                replaced: int | None = None) -> list[tuple[str, bytes]]:
    """Headers of a dead-lettered message, as Kafka Connect's error context: why it was rejected
    (reason, exception class, message, a truncated stack), where it came from (topic, partition,
    offset, timestamp and its own headers), and who rejected it when (group, service version,
    time). ``replaced``: the value was too large for the dead-letter topic and was dropped."""
    import json
    import time
    import traceback

    from stream import __version__

    reason = getattr(error, "reason", "processing_error")
    stack = "".join(traceback.format_exception(type(error), error, error.__traceback__))[-2000:]
    original = [(k, v.decode("utf-8", "replace")) for k, v in (getattr(record, "headers", None) or [])]
    headers = [("source_topic", ref.topic), ("source_partition", str(ref.partition)),
               ("source_offset", str(ref.offset)), ("reason", reason), ("error", str(error)[:1000]),
               ("error_class", type(error).__name__), ("error_stack", stack),
               ("source_timestamp_ms", str(getattr(record, "timestamp", "") or "")),
               ("source_headers", json.dumps(original)[:2000]), ("consumer_group", group),
               ("service_version", __version__),
               ("dlq_time", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))]
    if replaced is not None:
        headers.append(("value_replaced", f"the {replaced}-byte value was over the dead-letter topic's limit"))
    return [(k, v.encode("utf-8", "replace")) for k, v in headers]


def commit(consumer: "KafkaConsumer", points: dict[TopicPartition, tuple[int, str]]) -> None:
    """Synchronously commit ``{(topic, partition): (offset, metadata)}``."""
    if points:
        consumer.commit(kafka_offsets(points))


def commit_async(consumer: "KafkaConsumer", points: dict[TopicPartition, tuple[int, str]], *,
                 on_error: Callable[[BaseException], None] = lambda exc: None) -> None:
    """Queue a commit without blocking (also usable inside rebalance callbacks).

    Commits go out in order on the coordinator connection; ``on_error`` gets a failed one.
    """
    def done(_offsets: Any, result: Any) -> None:
        if isinstance(result, BaseException):
            on_error(result)

    if points:
        consumer.commit_async(kafka_offsets(points), callback=done)


def kafka_offsets(points: dict[TopicPartition, tuple[int, str]]) -> dict[Any, Any]:
    """``{(topic, partition): (offset, metadata)}`` as kafka-python's offsets mapping."""
    from kafka.structs import OffsetAndMetadata, TopicPartition as KTP

    return {KTP(t, p): OffsetAndMetadata(o, m, -1) for (t, p), (o, m) in points.items()}


def committed_metadata(consumer: "KafkaConsumer", tp: TopicPartition) -> str | None:
    from kafka.structs import TopicPartition as KTP

    om = consumer.committed(KTP(*tp), metadata=True)
    return getattr(om, "metadata", None) if om is not None else None


def group_busy(consumer: "KafkaConsumer") -> bool:
    """Whether the consumer is (re)joining its group.

    Uses kafka-python 3.0.x internals (``_coordinator``), guarded: kafka-python abandons a join
    that does not finish within one ``poll`` timeout, so callers poll longer while this holds.
    """
    coord = getattr(consumer, "_coordinator", None)
    try:
        return bool(coord.coordinator_unknown() or coord.rebalance_in_progress() or coord.need_rejoin())
    except Exception:
        return False


def set_paused(consumer: "KafkaConsumer", paused: bool) -> None:
    parts = list(consumer.assignment())
    if parts:
        (consumer.pause if paused else consumer.resume)(*parts)


def fetch_progress(consumer: "KafkaConsumer", *, timeout_ms: int = 5000) -> dict[TopicPartition, tuple[int, int]]:
    """(position, end offset) of each assigned, unpaused partition, the end asked of the broker."""
    parts = [p for p in consumer.assignment() if p not in consumer.paused()]
    if not parts:
        return {}
    ends = consumer.end_offsets(parts, timeout_ms=timeout_ms)
    out = {}
    for part in parts:
        try:
            out[(part.topic, part.partition)] = (consumer.position(part, timeout_ms=0), ends[part])
        except Exception:   # position unknown yet (no fetch, or just rewound): not judged this round
            continue
    return out


def reset_fetch(consumer: "KafkaConsumer", tp: TopicPartition, offset: int) -> None:
    """Seek a partition to where it is: drops whatever fetch state kafka-python kept for it."""
    from kafka.structs import TopicPartition as KTP

    consumer.seek(KTP(*tp), offset)


def fetch_state(consumer: "KafkaConsumer", tp: TopicPartition) -> str:
    """kafka-python's own view of why it is (not) fetching ``tp``, for the watchdog's log line.

    Reads the client's private state (3.0.12): any flag that keeps a partition out of its fetch
    requests (paused, a revocation in progress, an offset validation or reset pending, data
    parked while paused, no leader, a reconnect backoff, a fetch already in flight to the
    leader). It is a diagnosis of the fetch stall the watchdog works around; any failure to read
    it is reported in the line rather than raised.
    """
    from kafka.structs import TopicPartition as KTP

    part = KTP(*tp)
    try:
        state = consumer._subscription.assignment[part]
        fetcher = consumer._fetcher
        cluster = consumer._client.cluster
        leader = cluster.leader_for_partition(part)
        flags = {
            "fetchable": state.is_fetchable(),
            "paused": state.paused,
            "pending_revocation": state._pending_revocation,
            "awaiting_validation": state.awaiting_validation,
            "awaiting_reset": state.awaiting_reset,
            "position": state.position,
            "next_allowed_retry_s": (None if state.next_allowed_retry_time is None
                                     else round(state.next_allowed_retry_time - time.monotonic(), 1)),
            "parked_while_paused": (part in fetcher._paused_completed_fetches
                                    or part in fetcher._paused_partition_records),
            "completed_fetch_queued": any(f.topic_partition == part for f in list(fetcher._completed_fetches)),
            "leader": leader,
            "leader_epoch": cluster.leader_epoch_for_partition(part),
            "leader_backoff_s": (None if leader in (None, -1)
                                 else round(consumer._client._manager.connection_delay(leader), 1)),
            "fetch_in_flight_to_leader": leader in fetcher._nodes_with_pending_fetch_requests,
        }
    except Exception as exc:   # private state of another version: say so, do not fail the watchdog
        return f"kafka-python state unreadable ({type(exc).__name__}: {exc})"
    return " ".join(f"{k}={v}" for k, v in flags.items())


def lag(consumer: "KafkaConsumer") -> dict[TopicPartition, int]:
    """High watermark minus position, per assigned partition (from the last fetch; no request)."""
    out: dict[TopicPartition, int] = {}
    for part in consumer.assignment():
        hw = consumer.highwater(part)
        if hw is None:
            continue
        try:
            pos = consumer.position(part, timeout_ms=0)
        except Exception:  # position unknown yet (no fetch): skip this round
            continue
        if pos is not None:
            out[(part.topic, part.partition)] = max(0, hw - pos)
    return out


def broker_reachable(consumer: "KafkaConsumer", *, stale_after_s: float) -> bool:
    """Whether the consumer still talks to its group coordinator, for ``/readyz``.

    kafka-python keeps the assignment when the broker goes away, and ``bootstrap_connected()``
    only reports a bootstrap in progress, so neither notices a lost broker. The coordinator is
    forgotten on the first failed request, which also happens for a moment when it moves; a
    heartbeat went out at most ``heartbeat_interval_ms`` before that, so "no coordinator and no
    heartbeat for ``stale_after_s``" means the broker has been out of reach that long.
    """
    # Private, but the client version is pinned. The attribute, not ``coordinator()``: that one
    # marks the coordinator dead as a side effect, which is the IO thread's business.
    coordinator = getattr(consumer, "_coordinator", None)
    try:
        if coordinator is not None and getattr(coordinator, "coordinator_id", None) is not None:
            return True
        metrics = consumer.metrics() or {}
    except Exception:
        return False
    ages = [v for group in metrics.values() for name, v in group.items() if name == "last-heartbeat-seconds-ago"]
    return bool(ages) and min(ages) <= stale_after_s
