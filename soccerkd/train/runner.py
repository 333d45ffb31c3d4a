"""Run one training config end to end: build collaborators, loop over epochs, checkpoint, test.

``run_training(cfg)`` is what ``soccerkd train`` calls. Model selection uses the VAL split only
(best val video accuracy, ties broken by lower val loss); the test split is evaluated once, with
``best.pt``, after training.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import random
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from soccerkd.config import dump_config, from_dict, to_dict
from soccerkd.errors import CheckpointError, ConfigError
from soccerkd.spec import ClipSpec, InputSpec
from soccerkd.train.checkpoint import (RESUME_FIELDS, inference_fields, load_checkpoint, load_model,
                                      save_checkpoint)
from soccerkd.train.config import TrainConfig, config_sha256
from soccerkd.kd import DistillationTask
from soccerkd.train.loop import evaluate, train_one_epoch
from soccerkd.train.plots import plot_confusion, plot_curves

# ``datasets(cfg, spec) -> {"train": ds, "val": ds, "test": ds}``; items are (clip, label, video_index).
DatasetProvider = Callable[[TrainConfig, InputSpec], dict[str, Any]]
ModelFactory = Callable[..., nn.Module]


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; returns a seeded generator for DataLoader shuffling."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def eval_generator(seed: int) -> torch.Generator:
    """A generator for an evaluation loader, so that creating its workers never draws from the
    global torch RNG (which dropout uses); eval data is deterministic, so its value does not matter."""
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def _worker_init(worker_id: int) -> None:
    seed = torch.initial_seed() % (2**32)
    np.random.seed(seed)
    random.seed(seed)


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every RNG the run draws from, in weights_only-safe types (for exact resume)."""
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "loader": generator.get_state(), "python": random.getstate(),
            "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]],
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["loader"])
    random.setstate(tuple(v if not isinstance(v, list) else tuple(v) for v in state["python"]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy(), *rest))
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} requested but CUDA is not available")
    return device


def make_loader(dataset: Any, *, batch_size: int, shuffle: bool, num_workers: int, device: torch.device,
                generator: torch.Generator | None = None, persistent: bool = True) -> torch.utils.data.DataLoader:
    """``persistent=False`` re-creates the workers every epoch, so they see ``dataset.set_epoch``."""
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
        pin_memory=device.type == "cuda", drop_last=False, generator=generator,
        collate_fn=getattr(dataset, "collate_fn", None),
        worker_init_fn=_worker_init if num_workers else None, persistent_workers=num_workers > 0 and persistent)


def configure_determinism(deterministic: bool) -> None:
    """``deterministic=True``: cuDNN picks deterministic kernels (no benchmark autotuning) and torch
    warns about any other non-deterministic op; cuBLAS gets the workspace setting it needs."""
    if not deterministic:
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def make_optimizer(cfg: TrainConfig, params: Sequence[nn.Parameter]) -> torch.optim.Optimizer:
    o = cfg.optim
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                               nesterov=o.nesterov and o.momentum > 0)
    return torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)


def lr_factor(cfg: TrainConfig, epoch: int) -> float:
    """LR multiplier for 0-based ``epoch``: linear warm-up, then cosine / step / constant."""
    s = cfg.schedule
    if epoch < s.warmup_epochs:
        return (epoch + 1) / (s.warmup_epochs + 1)
    floor = s.min_lr / cfg.optim.lr
    if s.name == "cosine":
        span = max(1, cfg.epochs - s.warmup_epochs)
        progress = (epoch - s.warmup_epochs) / span
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    if s.name == "step":
        return max(floor, s.gamma ** ((epoch - s.warmup_epochs) // s.step_size))
    return 1.0


def make_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: lr_factor(cfg, e))


def build_input_spec(cfg: TrainConfig, model: nn.Module, class_names: Sequence[str]) -> InputSpec:
    """The model's own spec with this run's clip, size and (optional) normalisation applied."""
    base: InputSpec = getattr(model, "input_spec", None) or InputSpec()
    return dataclasses.replace(
        base,
        clip=ClipSpec(num_frames=cfg.model.frames, frame_stride=cfg.data.frame_stride,
                      target_fps=cfg.data.target_fps if cfg.data.target_fps is not None else base.clip.target_fps),
        size=cfg.data.size, resize=cfg.data.resize,
        mean=cfg.data.mean or base.mean, std=cfg.data.std or base.std,
        class_names=tuple(class_names))


def default_datasets(cfg: TrainConfig, spec: InputSpec) -> dict[str, Any]:
    from soccerkd.train.data import build_datasets

    return build_datasets(cfg, spec)


def default_class_names(cfg: TrainConfig) -> tuple[str, ...]:
    from soccerkd.train.data import dataset_class_names

    return dataset_class_names(cfg)


class Renormalize(nn.Module):
    """Maps a clip normalised for one spec to another spec's normalisation (for a KD teacher)."""

    def __init__(self, src: InputSpec, dst: InputSpec) -> None:
        super().__init__()
        shape = (1, 3, 1, 1, 1)
        self.register_buffer("scale", torch.tensor(src.std).view(shape) / torch.tensor(dst.std).view(shape))
        self.register_buffer("shift", (torch.tensor(src.mean) - torch.tensor(dst.mean)).view(shape)
                             / torch.tensor(dst.std).view(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale.to(x.dtype) + self.shift.to(x.dtype)


def teacher_mismatches(tspec: InputSpec, spec: InputSpec, teacher_manifest: str | None,
                       manifest: str | None, *, teacher_heldout: str | None = None,
                       heldout: str | None = None) -> list[str]:
    """What differs between the data a teacher was trained on and this run's (empty when nothing).

    Another manifest with the same val and test splits (``heldout_sha256``) is no mismatch: the
    teacher was given other or more training videos, but none of this run's val or test videos.
    """
    out = []
    same_heldout = heldout is not None and teacher_heldout == heldout
    if teacher_manifest != manifest and not same_heldout:
        out.append(f"split manifest sha256 {str(teacher_manifest)[:12]} (teacher) vs {str(manifest)[:12]} (this run)"
                   + ("; the teacher checkpoint records none" if teacher_manifest is None else ""))
    for name, a, b in (("frame stride", tspec.clip.frame_stride, spec.clip.frame_stride),
                       ("target fps", tspec.clip.target_fps, spec.clip.target_fps),
                       ("resize", tspec.resize, spec.resize)):
        if a != b:
            out.append(f"{name} {a} (teacher) vs {b} (this run)")
    return out


def load_teacher(cfg: TrainConfig, spec: InputSpec, device: torch.device, *, manifest_sha256: str | None = None,
                 heldout_sha256: str | None = None, log: Callable[[str], None] = print) -> tuple[nn.Module, Any, dict]:
    path = cfg.teacher_path()
    assert path is not None  # TrainConfig guarantees it for run == "kd"
    teacher, tspec, meta = load_model(path, device=str(device))
    problems = teacher_mismatches(tspec, spec, meta.get("manifest_sha256"), manifest_sha256,
                                  teacher_heldout=meta.get("heldout_sha256"), heldout=heldout_sha256)
    if problems and not cfg.kd.allow_mismatch:
        raise ConfigError(f"kd.teacher_checkpoint: {str(path)!r} was trained on other data or inputs: "
                          + "; ".join(problems) + ". Train the teacher on this manifest with the same "
                          "data.frame_stride/target_fps/resize, or pass --set kd.allow_mismatch=true")
    if problems:
        log("WARNING kd.allow_mismatch: teacher differs: " + "; ".join(problems))
    meta["mismatch"] = problems
    if tuple(tspec.class_names) != tuple(spec.class_names):
        raise ConfigError(f"kd.teacher_checkpoint: {str(path)!r} predicts {list(tspec.class_names)} "
                          f"but the data has classes {list(spec.class_names)}")
    if tspec.clip.num_frames != spec.clip.num_frames or tspec.size != spec.size:
        raise ConfigError(f"kd.teacher_checkpoint: {str(path)!r} expects {tspec.clip.num_frames} frames at "
                          f"{tspec.size}px, the student gets {spec.clip.num_frames} at {spec.size}px; "
                          f"set model.frames / data.size to match")
    renorm = None
    if tuple(tspec.mean) != tuple(spec.mean) or tuple(tspec.std) != tuple(spec.std):
        renorm = Renormalize(spec, tspec).to(device)
    return teacher, renorm, meta


def _manifest_record(cfg: TrainConfig) -> tuple[str | None, str | None, list[str] | None, dict | None]:
    """(whole manifest, val+test only) sha256 of this run's split manifest, its training videos
    (relative paths, sorted; ``soccerkd evaluate`` checks a split against them) and its ``synth``
    record (generator version, size, seed of procedural data; what the demo renders its match
    with); Nones without a manifest, and no ``synth`` record for data not made by the generator."""
    from soccerkd.data.splits import heldout_sha256, manifest_sha256, read_manifest
    from soccerkd.train.data import manifest_path

    path = manifest_path(cfg)
    if not path.is_file():
        return None, None, None, None
    manifest = read_manifest(path)
    synth = manifest.extra.get("synth")
    return (manifest_sha256(manifest), heldout_sha256(manifest), sorted(p for p, _ in manifest.entries("train")),
            dict(synth) if isinstance(synth, dict) else None)


def _write_history(out: Path, history: list[dict[str, Any]], title: str) -> None:
    (out / "metrics.json").write_text(json.dumps(history, indent=2))
    keys: list[str] = []
    for row in history:
        keys += [k for k in row if k not in keys and not isinstance(row[k], (dict, list))]
    with open(out / "metrics.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)
    plot_curves(history, out / "curves.png", title=title)


def _is_better(metrics: dict[str, Any], best: dict[str, float] | None) -> bool:
    if best is None:
        return True
    acc, loss = metrics["val_video_acc"], metrics["val_loss"]
    return acc > best["val_video_acc"] or (acc == best["val_video_acc"] and loss < best["val_loss"])


def read_resume_checkpoint(path: str | Path, cfg: TrainConfig) -> dict[str, Any]:
    """A ``last.pt`` to resume ``cfg`` from, checked before any data or model work."""
    ckpt = load_checkpoint(path)
    missing = [key for key in RESUME_FIELDS if key not in ckpt]
    if missing and "model_state" in ckpt:
        raise CheckpointError(f"checkpoint {str(path)!r} holds weights only (a best.pt has no optimizer state); "
                              f"resume from the run's last.pt, or start a new run from these weights with "
                              f"--set model.weights={path}")
    if missing:
        raise CheckpointError(f"checkpoint {str(path)!r} lacks {', '.join(map(repr, missing))}; cannot resume from it")
    if ckpt.get("model_name") != cfg.model.name:
        raise CheckpointError(f"checkpoint {str(path)!r} is for model {ckpt.get('model_name')!r}, "
                              f"config says {cfg.model.name!r}")
    return ckpt


def resume_state(ckpt: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                 scaler: Any, generator: torch.Generator) -> tuple[int, list[dict[str, Any]], Any]:
    """Load a ``last.pt`` into the collaborators; returns ``(epochs done, history, best metric)``."""
    model.load_state_dict(ckpt["model_state"])
    optimizer.load_state_dict(ckpt["optimizer_state"])
    scheduler.load_state_dict(ckpt["scheduler_state"])
    if scaler is not None and ckpt.get("scaler_state"):
        scaler.load_state_dict(ckpt["scaler_state"])
    if ckpt.get("rng_state"):
        set_rng_state(ckpt["rng_state"], generator)
    return int(ckpt["epoch"]), list(ckpt.get("history", [])), ckpt.get("best_metric")


def check_teacher_path(cfg: TrainConfig) -> None:
    """Fail before any data work when a KD run's teacher cannot be found, saying which key to set."""
    if cfg.run != "kd":
        return
    path = cfg.teacher_path()
    hint = "--set kd.teacher_checkpoint=PATH/TO/teacher/best.pt"
    if path is not None and "{sweep}" in str(path):
        raise ConfigError(f"kd.teacher_checkpoint: {str(path)!r} contains {{sweep}}, which only 'soccerkd sweep' "
                          f"fills in (with its --out); for 'soccerkd train' pass {hint}")
    if path is None or not path.is_file():
        raise ConfigError(f"kd.teacher_checkpoint: teacher checkpoint {str(path)!r} does not exist; train the "
                          f"teacher first (run: teacher) or pass {hint}")


def save_epoch(out: Path, state: dict[str, Any], *, improved: bool) -> None:
    """``last.pt`` gets the full resume state; ``best.pt`` (when ``improved``) only what inference
    and fine-tuning need."""
    save_checkpoint(out / "last.pt", **state)
    if improved:
        save_checkpoint(out / "best.pt", **inference_fields(state))


def prune_checkpoints(out: Path, keep: str) -> list[Path]:
    """Delete the checkpoints ``keep`` (last, best or both) does not want; returns those deleted."""
    drop = {"last": ["best.pt"], "best": ["last.pt"], "both": []}[keep]
    removed = [out / name for name in drop if (out / name).is_file()]
    for path in removed:
        path.unlink()
    return removed


def run_training(cfg: TrainConfig, *, resume: str | Path | None = None,
                 datasets: DatasetProvider | None = None, class_names: Sequence[str] | None = None,
                 model_factory: ModelFactory | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train per ``cfg``, writing into ``cfg.out_dir``; returns the summary (also ``summary.json``).

    Files: ``config.yaml`` (resolved config), ``last.pt``/``best.pt`` (``cfg.keep`` says which stay;
    see :mod:`soccerkd.train.checkpoint` for what each holds), ``metrics.json``/``.csv``
    (one row per epoch), ``curves.png``, ``test_metrics.json`` and ``confusion_test.png``.
    ``datasets``/``class_names``/``model_factory`` replace the defaults (the data layer and the
    model registry), which is how tests run on in-memory tensors.
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    check_teacher_path(cfg)
    resume_ckpt = read_resume_checkpoint(resume, cfg) if resume is not None else None
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, out / "config.yaml")
    configure_determinism(cfg.deterministic)
    device = resolve_device(cfg.device)
    generator = seed_everything(cfg.seed)

    if model_factory is None:
        from soccerkd.models import create_model as model_factory
    names = tuple(class_names) if class_names is not None else default_class_names(cfg)
    layout = {} if cfg.model.weights_layout == "auto" else {"weights_layout": cfg.model.weights_layout}
    model = model_factory(cfg.model.name, num_classes=len(names), weights=cfg.model.weights,
                          frames=cfg.model.frames, **layout, **cfg.model.kwargs)
    spec = build_input_spec(cfg, model, names)
    try:
        model.input_spec = spec
    except AttributeError:
        pass
    model.to(device)
    splits = (datasets or default_datasets)(cfg, spec)
    manifest_hash, heldout_hash, train_videos, synth = ((None, None, None, None) if datasets is not None
                                                        else _manifest_record(cfg))
    for split in ("train", "val", "test"):
        if split not in splits or len(splits[split]) == 0:
            raise ConfigError(f"data.root: split {split!r} is empty or missing under {str(cfg.data.root)!r}")
    # Exact resume. Every DataLoader iterator draws its workers' base seed from its ``generator``,
    # else from the global torch stream that dropout uses. Train workers are re-created each epoch,
    # so their draws come from the saved loader generator and follow dataset.set_epoch. The eval
    # loaders get generators of their own: a persistent val loader that drew from the global stream
    # drew once in an uninterrupted run but once more after every resume, which shifted dropout.
    train_loader = make_loader(splits["train"], batch_size=cfg.data.batch_size, shuffle=True,
                               num_workers=cfg.data.num_workers, device=device, generator=generator,
                               persistent=False)
    val_loader, test_loader = (make_loader(splits[s], batch_size=cfg.data.eval_batch_size, shuffle=False,
                                           num_workers=cfg.data.num_workers, device=device,
                                           generator=eval_generator(cfg.seed))
                               for s in ("val", "test"))

    teacher_meta: dict[str, Any] | None = None
    if cfg.run == "kd":
        teacher, renorm, teacher_meta = load_teacher(cfg, spec, device, manifest_sha256=manifest_hash,
                                                     heldout_sha256=heldout_hash, log=log)
        if renorm is not None:
            teacher = nn.Sequential(renorm, teacher)
        cache = None
        if cfg.kd.teacher_cache is not None:
            from soccerkd.kd.cache import TeacherLogitCache

            cache = TeacherLogitCache(teacher_sha256=teacher_meta.get("checkpoint_sha256"),
                                      path=cfg.teacher_cache_path(), log=log)
        task = DistillationTask(model, teacher, alpha=cfg.kd.alpha, temperature=cfg.kd.temperature,
                                kl_reduction=cfg.kd.kl_reduction, cache=cache)
    else:
        task = DistillationTask(model)
    from soccerkd.data.transforms import DeviceNormalize

    prepare = DeviceNormalize(spec).to(device) if cfg.data.fast_loader else None
    optimizer = make_optimizer(cfg, [p for p in model.parameters() if p.requires_grad])
    scheduler = make_scheduler(cfg, optimizer)
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_amp else None

    history: list[dict[str, Any]] = []
    best: dict[str, float] | None = None
    start_epoch = 0
    if resume_ckpt is not None:
        start_epoch, history, best = resume_state(resume_ckpt, model, optimizer, scheduler, scaler, generator)
        log(f"resumed from {resume} at epoch {start_epoch}")
        if best is not None and not (out / "best.pt").is_file():
            # removed by keep: last; the next epoch becomes the best so far so that one exists again
            log(f"WARNING {out / 'best.pt'} is missing (keep: last?); model selection restarts after epoch {start_epoch}")
            best = None

    # the resolved shift placement is saved, so a checkpoint rebuilds the same network even if a
    # default changes (ResNet-101 went from every block to every other block)
    model_kwargs = dict(cfg.model.kwargs)
    if getattr(model, "shift_every", None) is not None:
        model_kwargs.setdefault("shift_every", int(model.shift_every))
    common = {"model_name": cfg.model.name, "model_kwargs": model_kwargs, "input_spec": spec.to_dict(),
              "class_names": list(names), "config": to_dict(cfg), "run": cfg.run}
    if teacher_meta is not None:
        common["teacher"] = {k: teacher_meta.get(k) for k in ("model_name", "checkpoint_sha256", "checkpoint_path",
                                                               "manifest_sha256", "heldout_sha256", "mismatch")}
    common["manifest_sha256"] = manifest_hash
    common["heldout_sha256"] = heldout_hash
    common["train_videos"] = train_videos
    if synth is not None:
        common["synth"] = synth
    title = f"{cfg.run}: {cfg.model.name} seed {cfg.seed}"
    t0 = time.perf_counter()
    for epoch in range(start_epoch, cfg.epochs):
        lr = optimizer.param_groups[0]["lr"]
        if hasattr(splits["train"], "set_epoch"):
            splits["train"].set_epoch(epoch)
        tr = train_one_epoch(task, train_loader, optimizer, device=device, scaler=scaler, amp=use_amp, prepare=prepare,
                             max_steps=cfg.max_steps_per_epoch, progress=cfg.progress,
                             desc=f"epoch {epoch + 1}/{cfg.epochs}")
        scheduler.step()
        if task.cache_teacher:
            tr["teacher_cache_hit_rate"] = task.cache.take_hit_rate()
            task.cache.sync()
        va = evaluate(model, val_loader, class_names=names, device=device, amp=use_amp,
                      frames_per_clip=spec.clip.num_frames, progress=cfg.progress, prepare=prepare, desc="val")
        row = {"epoch": epoch + 1, "lr": lr, **{f"train_{k}": v for k, v in tr.items()},
               **{f"val_{k}": va[k] for k in ("loss", "clip_acc", "video_acc", "video_acc_upstream",
                                              "frame_acc", "macro_f1")},
               "elapsed_s": time.perf_counter() - t0}
        history.append(row)
        improved = _is_better(row, best)
        if improved:
            best = {"epoch": epoch + 1, "val_video_acc": row["val_video_acc"], "val_loss": row["val_loss"]}
        state = {"model_state": model.state_dict(), "optimizer_state": optimizer.state_dict(),
                 "scheduler_state": scheduler.state_dict(),
                 "scaler_state": scaler.state_dict() if scaler is not None else None,
                 "rng_state": rng_state(generator), "epoch": epoch + 1, "metrics": row, "history": history, "best_metric": best, **common}
        save_epoch(out, state, improved=improved)
        _write_history(out, history, title)
        log(f"epoch {epoch + 1}/{cfg.epochs} lr {lr:.4g} loss {tr['loss']:.4f} train_acc {tr['acc']:.3f} "
            f"val_clip {va['clip_acc']:.3f} val_video {va['video_acc']:.3f}{' *' if improved else ''} "
            f"({tr['clips_per_s']:.1f} clips/s)")

    best_ckpt = load_checkpoint(out / "best.pt")
    model.load_state_dict(best_ckpt["model_state"])
    test = evaluate(model, test_loader, class_names=names, device=device, amp=use_amp,
                    frames_per_clip=spec.clip.num_frames, progress=cfg.progress, prepare=prepare, desc="test")
    test["best_epoch"] = best_ckpt["epoch"]
    test["checkpoint"] = str(out / "best.pt")
    (out / "test_metrics.json").write_text(json.dumps(test, indent=2))
    plot_confusion(test["confusion_matrix"], names, out / "confusion_test.png",
                   title=f"test, video level: {cfg.model.name} ({cfg.run})")
    summary = {"run": cfg.run, "model": cfg.model.name, "seed": cfg.seed, "out_dir": str(out),
               "best_epoch": best_ckpt["epoch"], "best_val_video_acc": best_ckpt["best_metric"]["val_video_acc"],
               "test_video_acc": test["video_acc"], "test_clip_acc": test["clip_acc"],
               "test_frame_acc": test["frame_acc"], "test_video_acc_upstream": test["video_acc_upstream"],
               "test_macro_f1": test["macro_f1"], "train_seconds": time.perf_counter() - t0}
    if cfg.run == "kd":
        summary.update(alpha=cfg.kd.alpha, temperature=cfg.kd.temperature)
    summary["config_sha256"] = config_sha256(cfg)
    summary["manifest_sha256"] = manifest_hash
    removed = {p.name for p in prune_checkpoints(out, cfg.keep)}
    summary["checkpoints"] = {name: str(out / name) for name in ("best.pt", "last.pt") if name not in removed}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    frame = "" if test["frame_acc"] is None else f" frame {test['frame_acc']:.3f}"
    log(f"test (best epoch {summary['best_epoch']}): video {test['video_acc']:.3f} clip {test['clip_acc']:.3f}"
        f"{frame} -> {out}")
    return summary


def config_from_checkpoint(ckpt: dict[str, Any]) -> TrainConfig:
    return from_dict(TrainConfig, ckpt["config"])
