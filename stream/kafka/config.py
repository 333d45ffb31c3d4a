"""The Kafka side's own config: where the brokers are, how to authenticate, the topics and the
consumer group, and the delivery mode. Every client (serve, ingest, events tail, topics) is built
from one :class:`KafkaConfig`; the service config (:mod:`stream.config`) holds one as ``kafka:``,
and nothing in :mod:`stream.kafka` reads the service config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from soccerkd.errors import ConfigError

from stream.errors import is_env_name, not_env_name


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap: str = "127.0.0.1:9092"
    frames_topic: str = "frames"
    events_topic: str = "events"
    predictions_topic: Optional[str] = None
    dlq_topic: str = "frames-dlq"
    group_id: str = "soccerkd-serve"
    group_instance_id: Optional[str] = None
    max_poll_records: int = 16
    max_partition_fetch_bytes: int = 16 * 1024 * 1024
    # Room for a dead letter: an 8 MiB frame batch plus its provenance headers.
    max_request_size: int = 9 * 1024 * 1024
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    max_poll_interval_ms: int = 300_000
    commit_interval_ms: int = 1_000
    linger_ms: int = 5
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    connect_timeout_s: float = 10.0   # give up at start, with a one-line error, if no broker answers
    # at_least_once: commit offsets after the outputs are acknowledged (duplicates possible after a
    # crash; deduplicate on event_id). exactly_once: outputs and offsets in one Kafka transaction
    # per commit interval; read the events with isolation read_committed.
    delivery: Literal["at_least_once", "exactly_once"] = "at_least_once"
    transactional_id: Optional[str] = None   # exactly_once; default "<group_id>-<group_instance_id or host>"
    # The longest one producer flush or transaction step may block. Past it the service fails stop
    # (exit 1) and its restart replays from the last commit, rather than hang without working.
    commit_timeout_s: float = 30.0
    # Security, for every client (serve, ingest, events tail, topics). Secrets never live here:
    # passwords come from the environment variable or the file named below.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    ssl_cafile: Optional[Path] = None      # CA bundle (PEM) that signed the brokers' certificates
    ssl_certfile: Optional[Path] = None    # client certificate (PEM), when the brokers ask for one
    ssl_keyfile: Optional[Path] = None     # its private key (PEM)
    ssl_password_env: Optional[str] = None   # environment variable holding the key's password
    ssl_check_hostname: bool = True
    sasl_mechanism: Optional[Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]] = None
    sasl_username: Optional[str] = None
    sasl_password_env: str = "SOCCERKD_SASL_PASSWORD"   # environment variable holding the password...
    sasl_password_file: Optional[Path] = None            # ...or a file whose first line is it

    def resolved_transactional_id(self) -> str:
        """Stable per service instance, so a restarted instance fences its zombie predecessor."""
        import socket

        return self.transactional_id or f"{self.group_id}-{self.group_instance_id or socket.gethostname()}"

    def __post_init__(self) -> None:
        if self.delivery not in ("at_least_once", "exactly_once"):
            raise ConfigError(f"kafka.delivery must be at_least_once or exactly_once, got {self.delivery!r}")
        if not self.bootstrap or ":" not in self.bootstrap:
            raise ConfigError(f"kafka.bootstrap must look like host:port, got {self.bootstrap!r}")
        if self.security_protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
            raise ConfigError(f"kafka.security_protocol must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, "
                              f"got {self.security_protocol!r}")
        if self.security_protocol.startswith("SASL") and (not self.sasl_mechanism or not self.sasl_username):
            raise ConfigError(f"kafka.security_protocol {self.security_protocol} needs kafka.sasl_mechanism "
                              f"(PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512) and kafka.sasl_username")
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ConfigError(f"kafka.ssl_keyfile {str(self.ssl_keyfile)!r} is set without kafka.ssl_certfile, "
                              f"the client certificate it belongs to")
        if self.sasl_mechanism not in (None, "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
            raise ConfigError(f"kafka.sasl_mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, "
                              f"got {self.sasl_mechanism!r}")
        # A password typed where its variable's name belongs must not reach `config show` or an error.
        for name in ("sasl_password_env", "ssl_password_env"):
            value = getattr(self, name)
            if (value is not None or name == "sasl_password_env") and not is_env_name(value):
                raise ConfigError(not_env_name(f"kafka.{name}", value))
        for name in ("connect_timeout_s", "commit_timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"kafka.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("max_poll_records", "max_partition_fetch_bytes", "max_request_size", "commit_interval_ms"):
            if getattr(self, name) < 1:
                raise ConfigError(f"kafka.{name} must be >= 1, got {getattr(self, name)!r}")
