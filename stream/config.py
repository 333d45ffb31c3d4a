"""Typed, frozen configuration of ``soccerkd serve`` (read with :func:`soccerkd.config.load_config`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from soccerkd.errors import ConfigError

from stream.pipeline import LimitsConfig, PipelineConfig
from stream.shadow import ShadowConfig
from stream.smoothing import SmoothingConfig
from stream.windowing import WindowConfig


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
        for name in ("connect_timeout_s", "commit_timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"kafka.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("max_poll_records", "max_partition_fetch_bytes", "max_request_size", "commit_interval_ms"):
            if getattr(self, name) < 1:
                raise ConfigError(f"kafka.{name} must be >= 1, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class ModelConfig:
    checkpoint: Path = Path("runs/student/best.pt")
    device: str = "auto"
    amp: Literal["auto", "fp16", "bf16", "none"] = "auto"
    cpu_threads: Optional[int] = None
    # Where JPEG frames are decoded and preprocessed: "gpu" = nvJPEG into a CUDA frame store,
    # "cpu" = OpenCV threads; "auto" = gpu when the model runs on CUDA.
    decode: Literal["auto", "cpu", "gpu"] = "auto"
    # CPU decode of large frames at 1/2, 1/4 or 1/8 size (libjpeg's scaled IDCT) while the result
    # stays >= 2x the model's resize: 2-3x faster, input change below JPEG noise (stream.preprocess).
    jpeg_draft: bool = True


@dataclass(frozen=True)
class BatchingConfig:
    max_batch: int = 16
    max_wait_ms: float = 50.0
    max_pending_windows: int = 128
    resume_pending_windows: int = 32

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ConfigError(f"batching.max_batch must be >= 1, got {self.max_batch!r}")
        if self.max_wait_ms < 0:
            raise ConfigError(f"batching.max_wait_ms must be >= 0, got {self.max_wait_ms!r}")
        if not 0 <= self.resume_pending_windows < self.max_pending_windows:
            raise ConfigError(f"need 0 <= batching.resume_pending_windows < max_pending_windows, got "
                              f"{self.resume_pending_windows!r} and {self.max_pending_windows!r}")


@dataclass(frozen=True)
class StreamConfig:
    """Everything ``soccerkd serve`` needs. ``kind: stream`` marks the file for ``soccerkd config show``."""

    kind: Literal["stream"] = "stream"
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    windows: WindowConfig = field(default_factory=WindowConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    shadow: ShadowConfig = field(default_factory=ShadowConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    metrics_port: Optional[int] = None
    # Where /metrics, /healthz and /readyz listen: all interfaces by default, as a container needs;
    # 127.0.0.1 keeps them on this machine.
    metrics_bind: str = "0.0.0.0"
    log_every_s: float = 60.0   # one INFO line of counters a minute
    decode_threads: int = 1   # JPEG decode + resize threads (OpenCV releases the GIL); >1 on many-core hosts
    # /healthz fails once the main loop has not ticked for this long (a hung inference call or
    # flush); below kafka.max_poll_interval_ms, after which the group drops the member anyway.
    liveness_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.decode_threads < 1:
            raise ConfigError(f"decode_threads must be >= 1, got {self.decode_threads!r}")
        if self.metrics_port is not None and not 0 <= self.metrics_port < 65536:
            raise ConfigError(f"metrics_port must be 0..65535 or null, got {self.metrics_port!r}")
        if not 0 < self.liveness_timeout_s < self.kafka.max_poll_interval_ms / 1000:
            raise ConfigError(f"liveness_timeout_s must be > 0 and below kafka.max_poll_interval_ms "
                              f"({self.kafka.max_poll_interval_ms} ms), got {self.liveness_timeout_s!r}")

    def pipeline_config(self) -> PipelineConfig:
        return PipelineConfig(window=self.windows, smoothing=self.smoothing, max_batch=self.batching.max_batch,
                              max_wait_ms=self.batching.max_wait_ms,
                              raw_predictions=self.kafka.predictions_topic is not None, limits=self.limits)
