"""Run a grid of training configs × (α, T) × seeds and tabulate mean ± std of the test metrics.

This is the paper's "performance study" made repeatable: every cell is trained per seed with the
same config, and model selection stays on the val split. Among the α×T cells of one KD config,
the cell with the best mean val video accuracy is **chosen on val**; only the chosen cell (and
configs with a single cell) show test figures, the others show val only, so nobody picks on test.
Runs whose ``summary.json`` already exists are reused (pass ``rerun=True`` to retrain) if its
``config_sha256`` equals the planned run's; otherwise the sweep stops and says so.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from soccerkd.config import load_config
from soccerkd.errors import ConfigError
from soccerkd.train.config import TrainConfig, config_sha256

METRICS = ("test_video_acc", "test_clip_acc", "test_frame_acc", "best_val_video_acc")
TEST_METRICS = tuple(m for m in METRICS if m.startswith("test_"))


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

    ``{sweep}`` in ``kd.teacher_checkpoint`` and ``kd.teacher_cache`` becomes ``out`` (``{seed}`` is
    kept for the run), so a KD config can point at the teachers this same sweep trains, e.g.
    ``{sweep}/synth_teacher/seed{seed}/best.pt``.
    """
    cells = []
    for path in configs:
        cfg = load_config(TrainConfig, path, list(overrides))
        name = Path(path).stem
        paths = {k: v.replace("{sweep}", str(out)) for k in ("teacher_checkpoint", "teacher_cache")
                 if "{sweep}" in (v := getattr(cfg.kd, k) or "")}
        if paths:
            cfg = dataclasses.replace(cfg, kd=dataclasses.replace(cfg.kd, **paths))
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
    """One row per cell; test metrics only on the val-chosen cell of each config (see module docstring)."""
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
    by_name: dict[str, list[int]] = {}
    for i, cell in enumerate(cells):
        by_name.setdefault(cell.name, []).append(i)
    for members in by_name.values():
        scored = [i for i in members if "best_val_video_acc" in rows[i]]
        chosen = max(scored, key=lambda i: rows[i]["best_val_video_acc"]["mean"], default=None)
        for i in members:
            rows[i]["chosen_on_val"] = i == chosen
            if len(members) > 1 and i != chosen:
                for key in TEST_METRICS:
                    rows[i].pop(key, None)
    return rows


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """Accuracies in percent, mean ± sample std over seeds."""
    head = ("| cell | run | model | frames | α | T | seeds | val video acc | chosen on val | test video acc | "
            "test clip acc | test frame acc |")
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for r in rows:
        def fmt(key: str) -> str:
            v = r.get(key)
            if v:
                return f"{100 * v['mean']:.1f} ± {100 * v['std']:.1f}"
            if key == "test_frame_acc" and r["frames"] != 1:
                return "(clip model)"
            return "(val only)" if key in TEST_METRICS and not r.get("chosen_on_val") else "n/a"
        alpha = "" if r["alpha"] is None else f"{r['alpha']:g}"
        temp = "" if r["temperature"] is None else f"{r['temperature']:g}"
        chosen = "yes" if r.get("chosen_on_val") else ""
        lines.append(f"| {r['cell']} | {r['run']} | {r['model']} | {r['frames']} | {alpha} | {temp} | {r['n']} | "
                     f"{fmt('best_val_video_acc')} | {chosen} | {fmt('test_video_acc')} | {fmt('test_clip_acc')} | "
                     f"{fmt('test_frame_acc')} |")
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
            cfg = dataclasses.replace(cell.config, seed=int(seed), out_dir=run_dir)
            if summary_path.is_file() and not rerun:
                summary = json.loads(summary_path.read_text())
                want, got = config_sha256(cfg), summary.get("config_sha256")
                if got != want:
                    raise ConfigError(f"{summary_path} was trained with another config (config_sha256 "
                                      f"{str(got)[:12]}, this sweep's {want[:12]}); compare "
                                      f"{run_dir / 'config.yaml'} with the sweep's config, then pass --rerun "
                                      f"or use another --out")
                log(f"[{done}/{total}] {cell.tag} seed {seed}: reusing {summary_path}")
            else:
                log(f"[{done}/{total}] {cell.tag} seed {seed} -> {run_dir}")
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
