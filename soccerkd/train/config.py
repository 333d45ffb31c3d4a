"""Frozen, typed configuration of one training run (teacher, student baseline or KD).

Load with ``soccerkd.config.load_config(TrainConfig, path, overrides)``; every check here raises
:class:`ConfigError` naming the key and the bad value. YAML files in ``configs/train/`` supply values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from soccerkd.errors import ConfigError

RunKind = Literal["teacher", "student", "kd"]


def _check(cond: bool, key: str, value: Any, want: str) -> None:
    if not cond:
        raise ConfigError(f"{key}: {want}, got {value!r}")


@dataclass(frozen=True)
class ModelConfig:
    """Which network to build (see ``soccerkd.models.list_models()``) and how."""

    name: str = "tsm_resnet18"
    # None = random init; a torchvision enum name (e.g. "DEFAULT"), or a local weights file path.
    weights: str | None = None
    frames: int = 8
    # Key layout of a weights file: auto (guess from the keys), torchvision, mit_tsm or mmaction2
    # (soccerkd.models.layouts). Only passed to the model when not "auto".
    weights_layout: str = "auto"
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(self.weights_layout in ("auto", "torchvision", "mit_tsm", "mmaction2"), "model.weights_layout",
               self.weights_layout, "must be auto, torchvision, mit_tsm or mmaction2")
        _check(bool(self.name), "model.name", self.name, "must be a model name")
        _check(self.frames >= 1, "model.frames", self.frames, "must be >= 1")


@dataclass(frozen=True)
class DataConfig:
    """Where the clips come from and how they are sampled and batched."""

    root: Path = Path("data/synth")
    layout: Literal["soccerdb1", "video_folder"] = "soccerdb1"
    # Split manifest (JSON); None = ``<root>/manifest.json``, written on first use (seeded, 70/15/15).
    manifest: Path | None = None
    split_seed: int = 0
    frame_stride: int = 2
    # Sample clips at this frame rate instead (stride = round(source_fps / target_fps)); None = frame_stride.
    target_fps: float | None = None
    size: int = 64
    resize: int = 72
    # How a clip's frames are laid out: "stride" (T frames every frame_stride from a start; what the
    # streaming service sees) or "segments" (TSN: one frame from each of T equal segments of the whole
    # video; for short, trimmed clips such as SoccerDB1's 25 frames). See soccerkd/data/datasets.py.
    clip_layout: Literal["stride", "segments"] = "stride"
    # Clips per video at evaluation (video accuracy = mean softmax over these K clips).
    eval_clips: int = 4
    # Random clips drawn per training video per epoch.
    train_clips: int = 1
    batch_size: int = 8
    eval_batch_size: int = 16
    num_workers: int = 0
    # None = the model's own normalisation (ImageNet for 2D trunks, Kinetics for video models).
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    augment: bool = True
    # Area fraction range of the training random resized crop (with augment); torchvision's
    # (0.08, 1) and our old (0.35, 1) often cut a small target out of the frame.
    crop_scale: tuple[float, float] = (0.35, 1.0)
    # Decoded-video cache: None, "memory" (decode each video once per process) or a directory.
    cache: str | None = None
    # Fast loader: the memory cache keeps each video resized once, items are uint8 crops, and
    # scaling/normalising runs on the device (the GPU when there is one); with augment, training
    # items are uncropped frames and the random resized crop and flip run on the device too. Off by default because
    # the uint8 rounding changes inputs by up to 0.5/255 versus the float path.
    fast_loader: bool = False

    def __post_init__(self) -> None:
        for key in ("frame_stride", "size", "resize", "eval_clips", "train_clips", "batch_size", "eval_batch_size"):
            _check(getattr(self, key) >= 1, f"data.{key}", getattr(self, key), "must be >= 1")
        _check(self.resize >= self.size, "data.resize", self.resize, f"must be >= data.size ({self.size})")
        _check(self.num_workers >= 0, "data.num_workers", self.num_workers, "must be >= 0")
        _check(len(self.crop_scale) == 2 and 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1, "data.crop_scale",
               self.crop_scale, "must be [min, max] with 0 < min <= max <= 1")
        _check(self.clip_layout in ("stride", "segments"), "data.clip_layout", self.clip_layout,
               "must be stride or segments")
        _check(self.target_fps is None or self.target_fps > 0, "data.target_fps", self.target_fps, "must be > 0 or null")


@dataclass(frozen=True)
class OptimConfig:
    name: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False

    def __post_init__(self) -> None:
        _check(self.lr > 0, "optim.lr", self.lr, "must be > 0")
        _check(0 <= self.momentum < 1, "optim.momentum", self.momentum, "must be in [0, 1)")
        _check(self.weight_decay >= 0, "optim.weight_decay", self.weight_decay, "must be >= 0")


@dataclass(frozen=True)
class ScheduleConfig:
    """LR schedule, stepped once per epoch after an optional linear warm-up."""

    name: Literal["cosine", "step", "constant"] = "cosine"
    warmup_epochs: int = 0
    step_size: int = 30
    gamma: float = 0.1
    min_lr: float = 0.0

    def __post_init__(self) -> None:
        _check(self.warmup_epochs >= 0, "schedule.warmup_epochs", self.warmup_epochs, "must be >= 0")
        _check(self.step_size >= 1, "schedule.step_size", self.step_size, "must be >= 1")
        _check(0 < self.gamma <= 1, "schedule.gamma", self.gamma, "must be in (0, 1]")
        _check(self.min_lr >= 0, "schedule.min_lr", self.min_lr, "must be >= 0")


@dataclass(frozen=True)
class KDConfig:
    """Distillation settings; used only when ``run: kd``.

    ``teacher_checkpoint`` may contain ``{seed}`` (replaced by the run's seed) so that a sweep
    pairs each KD seed with the teacher trained with the same seed.
    """

    teacher_checkpoint: str | None = None
    alpha: float = 0.95
    temperature: float = 6.0
    # How the KL is averaged: "batchmean" (true KL per sample) or "mean" (upstream nn.KLDivLoss()
    # default, = batchmean / num_classes). See soccerkd/kd/loss.py for the alpha equivalence.
    kl_reduction: Literal["batchmean", "mean"] = "batchmean"
    # A teacher trained on another split manifest, or with another frame stride / fps / resize,
    # is refused unless this is true (its soft targets would then come from other inputs or from
    # the student's val/test videos). A manifest with the same val and test splits but other (e.g.
    # more) training videos is accepted: see soccerkd.data.splits.heldout_sha256.
    allow_mismatch: bool = False
    # Teacher logits looked up by the content of the clip instead of recomputed (soccerkd.kd.cache):
    # null = off; "memory" = within this run; a file path (may hold {sweep}, {seed}) = shared by every
    # run of the same teacher, e.g. an alpha x T grid. Pays off without augmentation only (a clip then
    # recurs every epoch); cached logits equal a fresh pass up to float rounding.
    teacher_cache: str | None = None

    def __post_init__(self) -> None:
        _check(self.kl_reduction in ("batchmean", "mean"), "kd.kl_reduction", self.kl_reduction,
               "must be batchmean or mean")
        _check(0.0 <= self.alpha <= 1.0, "kd.alpha", self.alpha, "must be in [0, 1]")
        _check(self.temperature > 0, "kd.temperature", self.temperature, "must be > 0")


@dataclass(frozen=True)
class TrainConfig:
    """One run. ``run`` picks the recipe: ``teacher``/``student`` = cross-entropy fine-tuning of
    ``model``; ``kd`` = ``model`` distilled from the frozen ``kd.teacher_checkpoint``."""

    kind: Literal["train"] = "train"
    run: RunKind = "student"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    kd: KDConfig = field(default_factory=KDConfig)
    epochs: int = 10
    seed: int = 0
    # "auto" = cuda when available, else cpu.
    device: str = "auto"
    amp: bool = True
    # cuDNN deterministic kernels, no autotuning (slower); for bit-exact reruns on one GPU.
    deterministic: bool = False
    # CPU threads for torch (None = torch's default).
    threads: int | None = None
    out_dir: Path = Path("runs/train")
    # Cap on optimizer steps per epoch (None = full epoch); for smoke tests.
    max_steps_per_epoch: int | None = None
    progress: bool = True
    # Checkpoints left in out_dir when training ends: "best" (weights, config, spec: for evaluate,
    # export, serve, predict and as a KD teacher), "last" (the full resume state, optimizer
    # included), or "both". Both are written while training runs.
    keep: Literal["last", "best", "both"] = "both"

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, "epochs", self.epochs, "must be >= 1")
        _check(self.threads is None or self.threads >= 1, "threads", self.threads, "must be >= 1 or null")
        _check(self.max_steps_per_epoch is None or self.max_steps_per_epoch >= 1,
               "max_steps_per_epoch", self.max_steps_per_epoch, "must be >= 1 or null")
        _check(self.device == "auto" or self.device.split(":")[0] in ("cpu", "cuda", "mps"),
               "device", self.device, "must be auto, cpu, cuda[:N] or mps")
        if self.run == "kd" and not self.kd.teacher_checkpoint:
            raise ConfigError("kd.teacher_checkpoint: run 'kd' needs a teacher checkpoint path, got None")
        _check(self.keep in ("last", "best", "both"), "keep", self.keep, "must be last, best or both")
        _check(self.schedule.warmup_epochs < self.epochs or self.epochs == 1, "schedule.warmup_epochs",
               self.schedule.warmup_epochs, f"must be < epochs ({self.epochs})")

    def teacher_path(self) -> Path | None:
        if self.kd.teacher_checkpoint is None:
            return None
        return Path(self.kd.teacher_checkpoint.replace("{seed}", str(self.seed)))

    def teacher_cache_path(self) -> Path | None:
        """``kd.teacher_cache`` as a file path (``{seed}`` resolved); None when off or "memory"."""
        if self.kd.teacher_cache in (None, "memory"):
            return None
        return Path(self.kd.teacher_cache.replace("{seed}", str(self.seed)))


def config_sha256(cfg: TrainConfig) -> str:
    """Hex sha256 of everything in ``cfg`` that can change a run's result (not out_dir, progress, keep).

    Stored in each run's ``summary.json``; ``soccerkd sweep`` compares it before reusing a run.
    """
    import hashlib
    import json

    from soccerkd.config import to_dict

    d = to_dict(cfg)
    for key in ("out_dir", "progress", "keep"):
        d.pop(key, None)
    if cfg.kd.teacher_checkpoint:  # "{seed}" resolved, so a sweep's plan matches the run it made
        d["kd"]["teacher_checkpoint"] = str(cfg.teacher_path())
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()
