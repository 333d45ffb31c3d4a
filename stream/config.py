"""Typed, frozen configuration of ``soccerkd serve`` (read with :func:`soccerkd.config.load_config`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

from soccerkd.errors import ConfigError

from stream.core.limits import LimitsConfig
from stream.core.pipeline import PipelineConfig
from stream.core.smoothing import SmoothingConfig
from stream.core.windowing import WindowConfig
from stream.inference.shadow import ShadowConfig
from stream.kafka.config import KafkaConfig


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
    # stays >= 2x the model's resize: 2-3x faster, input change below JPEG noise (stream.inference.preprocess).
    jpeg_draft: bool = True
    # The decoded-frame store's budget: frames past it in one poll are dead-lettered
    # (limit_exceeded). 2 GiB is 57,000 frames at 112 px, 14,000 at 224 px.
    frame_store_mb: float = 2048.0
    # Hot swap (SIGHUP reloads `checkpoint`, stream.app.swap): 0 swaps once the new checkpoint loads
    # and checks; N > 0 first runs it in shadow on N live windows and swaps only if its top-1
    # agreement with the serving model is >= canary_agreement within canary_timeout_s.
    canary_windows: int = 0
    canary_agreement: float = 0.9
    canary_timeout_s: float = 600.0

    def __post_init__(self) -> None:
        if not self.frame_store_mb > 0:
            raise ConfigError(f"model.frame_store_mb must be > 0, got {self.frame_store_mb!r}")
        if self.canary_windows < 0:
            raise ConfigError(f"model.canary_windows must be >= 0, got {self.canary_windows!r}")
        if not 0.0 <= self.canary_agreement <= 1.0:
            raise ConfigError(f"model.canary_agreement must be within [0, 1], got {self.canary_agreement!r}")
        if not self.canary_timeout_s > 0:
            raise ConfigError(f"model.canary_timeout_s must be > 0, got {self.canary_timeout_s!r}")


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
