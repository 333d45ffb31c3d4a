"""kafka-python clients built from a :class:`~stream.kafka.config.KafkaConfig`: security
arguments (passwords from the environment or a file, never from the config), the frames
consumer's and the producer's settings, and one error line when no broker answers.

Settings for multi-MB frame messages: the producer's ``max_request_size`` is raised to 9 MiB
(room for a dead letter: an 8 MiB frame batch plus its headers) and frames are not compressed
(already JPEG); the consumer fetches up to 16 MiB per partition and at most
``max_poll_records`` (16) messages per poll so a poll never holds hundreds of MB. Consumers use
manual commits and the cooperative-sticky assignor; ``group_instance_id`` turns on static
membership (a restarted instance takes its partitions back without a rebalance).
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator

from stream.kafka.config import KafkaConfig

log = logging.getLogger("soccerkd.kafka")
_warned: set[str] = set()   # each insecure setting is said once a process, not once a client

if TYPE_CHECKING:
    from kafka import KafkaConsumer, KafkaProducer


def client_security(cfg: KafkaConfig) -> dict[str, Any]:
    """kafka-python's security arguments for ``cfg``, reading passwords from the environment
    variable or file the config names (never from the config itself, never logged)."""
    import os
    from pathlib import Path

    from soccerkd.errors import ConfigError

    if cfg.security_protocol == "PLAINTEXT":
        return {}
    warn_insecure(cfg)
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


def warn_insecure(cfg: KafkaConfig) -> None:
    """One WARNING a process for each setting that weakens the security the config asks for."""
    if cfg.security_protocol.endswith("SSL") and not cfg.ssl_check_hostname and "hostname" not in _warned:
        _warned.add("hostname")
        log.warning("kafka.ssl_check_hostname is false: the brokers' certificates are not matched to their "
                    "host names, so anyone with a certificate from the same CA can pose as a broker")
    if cfg.security_protocol == "SASL_PLAINTEXT" and cfg.sasl_mechanism == "PLAIN" and "plain" not in _warned:
        _warned.add("plain")
        log.warning("kafka.security_protocol SASL_PLAINTEXT with sasl_mechanism PLAIN sends the password in "
                    "clear text to %s; use SASL_SSL, or a SCRAM mechanism", cfg.bootstrap)


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

    from stream.kafka.admin import unreachable_error

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


def partitions_for_topic(consumer: Any, topic: str, *, within_s: float, sleep: Callable[[float], None] = time.sleep,
                         monotonic: Callable[[], float] = time.monotonic) -> set[int]:
    """``consumer.partitions_for_topic(topic)``, asked again for up to ``within_s`` while the
    metadata request fails to connect. kafka-python 3.0.12 sends it to one broker of its
    (possibly stale) metadata and raises ``KafkaConnectionError`` when that one is down, instead
    of asking another: for a few seconds after a broker of a cluster dies (until it is fenced), a
    service starting up then crashed on a topic that exists
    (``benchmarks/repro_coordinator_failover.py``)."""
    from kafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError

    deadline = monotonic() + within_s
    while True:
        try:
            return consumer.partitions_for_topic(topic) or set()
        except (KafkaConnectionError, NodeNotReadyError, KafkaTimeoutError):
            if monotonic() >= deadline:
                raise
            sleep(0.5)
