"""Run a grid of training configs × (α, T) × seeds and tabulate mean ± std of the test metrics.

This is the paper's "performance study" made repeatable: every cell is trained per seed with the
same config, model selection stays on the val split, and the table reports test-split figures.
Runs whose ``summary.json`` already exists are reused (pass ``rerun=True`` to retrain), so an
interrupted sweep continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from soccerkd.config import load_config
from soccerkd.train.config import TrainConfig

METRICS = ("test_video_acc", "test_clip_acc", "test_frame_acc", "best_val_video_acc")


@dataclasses.dataclass(frozen=True)
class SweepCell:
    """One row of the table: a config (and α/T for KD runs), trained once per seed."""

    name: str
    config: TrainConfig
    alpha: float | None = None
    temperature: float | None = None

    @property
    def tag(self) -> str:
        return self.name if self.alpha is None else f"{self.name}/a{self.alpha:g}_T{self.temperature:g}"


def plan_cells(configs: Sequence[str | Path], *, alphas: Sequence[float] = (), temperatures: Sequence[float] = (),
               overrides: Iterable[str] = (), out: Path) -> list[SweepCell]:
    """Expand each config into cells; KD configs get one cell per (α, T) (their own values if none given).

    ``{sweep}`` in ``kd.teacher_checkpoint`` becomes ``out`` (``{seed}`` is kept for the run), so a
    KD config can point at the teachers this same sweep trains, e.g.
    ``{sweep}/synth_teacher/seed{seed}/best.pt``.
    """
    cells = []
    for path in configs:
        cfg = load_config(TrainConfig, path, list(overrides))
        name = Path(path).stem
        if cfg.kd.teacher_checkpoint and "{sweep}" in cfg.kd.teacher_checkpoint:
            cfg = dataclasses.replace(cfg, kd=dataclasses.replace(
                cfg.kd, teacher_checkpoint=cfg.kd.teacher_checkpoint.replace("{sweep}", str(out))))
        if cfg.run != "kd":
            cells.append(SweepCell(name, cfg))
            continue
        for a in alphas or (cfg.kd.alpha,):
            for t in temperatures or (cfg.kd.temperature,):
                kd = dataclasses.replace(cfg.kd, alpha=float(a), temperature=float(t))
                cells.append(SweepCell(name, dataclasses.replace(cfg, kd=kd), float(a), float(t)))
    return cells


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value)."""
    vals = [float(v) for v in values]
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def aggregate(cells: Sequence[SweepCell], results: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rows = []
    for cell in cells:
        runs = results.get(cell.tag, [])
        row: dict[str, Any] = {"cell": cell.tag, "run": cell.config.run, "model": cell.config.model.name,
                               "frames": cell.config.model.frames, "alpha": cell.alpha,
                               "temperature": cell.temperature, "seeds": [r["seed"] for r in runs], "n": len(runs)}
        for key in METRICS:
            vals = [r[key] for r in runs if r.get(key) is not None]
            if vals:
                m, s = mean_std(vals)
                row[key] = {"mean": m, "std": s, "values": vals}
        rows.append(row)
    return rows


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """Accuracies in percent, mean ± sample std over seeds."""
    head = "| cell | run | model | frames | α | T | seeds | test video acc | test clip acc | test frame acc | val video acc |"
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for r in rows:
        def fmt(key: str) -> str:
            v = r.get(key)
            return f"{100 * v['mean']:.1f} ± {100 * v['std']:.1f}" if v else "n/a"
        alpha = "" if r["alpha"] is None else f"{r['alpha']:g}"
        temp = "" if r["temperature"] is None else f"{r['temperature']:g}"
        lines.append(f"| {r['cell']} | {r['run']} | {r['model']} | {r['frames']} | {alpha} | {temp} | {r['n']} | "
                     f"{fmt('test_video_acc')} | {fmt('test_clip_acc')} | {fmt('test_frame_acc')} | "
                     f"{fmt('best_val_video_acc')} |")
    return "\n".join(lines) + "\n"


def run_sweep(configs: Sequence[str | Path], *, seeds: Sequence[int], out: str | Path,
              alphas: Sequence[float] = (), temperatures: Sequence[float] = (), overrides: Iterable[str] = (),
              rerun: bool = False, train: Callable[..., dict[str, Any]] | None = None,
              log: Callable[[str], None] = print, **train_kwargs: Any) -> dict[str, Any]:
    """Train every cell × seed into ``out/<cell>/seed<S>``; write ``sweep.json`` and ``sweep.md``."""
    if train is None:
        from soccerkd.train.runner import run_training as train
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cells = plan_cells(configs, alphas=alphas, temperatures=temperatures, overrides=overrides, out=out)
    total = len(cells) * len(seeds)
    results: dict[str, list[dict[str, Any]]] = {}
    done = 0
    for cell in cells:
        for seed in seeds:
            done += 1
            run_dir = out / cell.tag / f"seed{seed}"
            summary_path = run_dir / "summary.json"
            if summary_path.is_file() and not rerun:
                summary = json.loads(summary_path.read_text())
                log(f"[{done}/{total}] {cell.tag} seed {seed}: reusing {summary_path}")
            else:
                log(f"[{done}/{total}] {cell.tag} seed {seed} -> {run_dir}")
                cfg = dataclasses.replace(cell.config, seed=int(seed), out_dir=run_dir)
                summary = train(cfg, **train_kwargs)
            results.setdefault(cell.tag, []).append(summary)
            _write(out, cells, results, seeds)
    return _write(out, cells, results, seeds)


def _write(out: Path, cells: Sequence[SweepCell], results: dict[str, list[dict[str, Any]]],
           seeds: Sequence[int]) -> dict[str, Any]:
    rows = aggregate(cells, results)
    report = {"seeds": list(seeds), "rows": rows, "runs": results}
    (out / "sweep.json").write_text(json.dumps(report, indent=2))
    (out / "sweep.md").write_text(markdown_table(rows))
    return report
