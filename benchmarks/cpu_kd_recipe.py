"""CPU KD recipe on generator v3 (issue 12): a teacher given more, the student, KD with α and T
chosen on val, test read only for the chosen cell. Reproduces the table in docs/results.md.

    soccerkd data synth --out data/synth_v3_64 --clips-per-class 750 --seed 1 --size 64x48 --frames 24
    python benchmarks/cpu_kd_recipe.py --out runs/cpu_kd

Stages (``--stages``, default all, in this order; finished runs are reused, so the script can be
stopped and restarted, and two stages can run side by side in two processes):

1. ``manifest``: ``<data>/manifest_student.json``, the student's training split: ``--student-per-class``
   clips per class sampled from the full one (``splits.subset_train``); val and test unchanged.
2. ``teacher``: ``configs/train/cpu_v3_teacher.yaml`` for ``--teacher-seeds`` (whole training split).
3. ``student``: ``configs/train/cpu_v3_student.yaml`` for ``--seeds`` (labels only, the subset).
4. ``grid``: ``configs/train/cpu_v3_kd.yaml`` for every α × T, seed ``--grid-seed``; the cell with the
   best val video accuracy (ties: lower val loss) is chosen. Nothing here reads test.
5. ``kd``: the chosen cell for ``--seeds``.
6. ``table``: ``<out>/recipe.md`` and ``recipe.json`` (mean ± sample std over seeds), teacher
   calibration on val at the grid's temperatures, and the val-accuracy-per-epoch plot (``--plot``).

Every run goes to ``<out>/<config stem>[/a<α>_T<T>]/seed<S>`` exactly as ``soccerkd sweep`` lays it out.
The script sets ``data.manifest`` itself: ``<root>/manifest.json`` for the teacher,
``<root>/manifest_student.json`` for the student and KD runs (``--set data.root=...`` moves both).
``benchmarks/gpu_experiments.sh`` runs the same script with the paper-sized configs
(``--teacher-config`` / ``--student-config`` / ``--kd-config``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {name: ROOT / "configs" / "train" / f"cpu_v3_{name}.yaml" for name in ("teacher", "student", "kd")}
# run directories are named after the config stems: <out>/<stem>/seed<S>
STAGES = ("manifest", "teacher", "student", "grid", "kd", "table")


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def _sweep(config: str, seeds: list[int], out: Path, overrides: list[str], alphas=(), temperatures=()) -> dict:
    from soccerkd.train.sweep import run_sweep

    return run_sweep([config], seeds=seeds, out=out, alphas=alphas, temperatures=temperatures, overrides=overrides)


def manifests(args: argparse.Namespace) -> tuple[Path, Path]:
    """(teacher's, student's) split manifest paths under the data root the configs (and --set) give."""
    from soccerkd.config import load_config
    from soccerkd.train.config import TrainConfig

    root = Path(load_config(TrainConfig, args.student_config, args.overrides).data.root)
    return root / "manifest.json", root / "manifest_student.json"


def _summaries(out: Path, tag: str, seeds: list[int]) -> list[dict[str, Any]]:
    paths = [out / tag / f"seed{s}" / "summary.json" for s in seeds]
    return [json.loads(p.read_text()) for p in paths if p.is_file()]


def _best_val(run_dir: Path) -> tuple[float, float]:
    """(best val video acc, its val loss) from a run's metrics.json, as the runner selects."""
    rows = json.loads((run_dir / "metrics.json").read_text())
    best = max(rows, key=lambda r: (r["val_video_acc"], -r["val_loss"]))
    return best["val_video_acc"], best["val_loss"]


def choose_cell(out: Path, kd_stem: str, alphas: list[float], temperatures: list[float], seed: int) -> dict[str, Any]:
    """The grid cell with the best val video accuracy (ties: lower val loss); val only."""
    cells = []
    for a in alphas:
        for t in temperatures:
            run = out / kd_stem / f"a{a:g}_T{t:g}" / f"seed{seed}"
            if not (run / "metrics.json").is_file():
                raise SystemExit(f"grid cell {run} has not run yet; run --stages grid first")
            acc, loss = _best_val(run)
            cells.append({"alpha": a, "temperature": t, "val_video_acc": acc, "val_loss": loss})
    best = max(cells, key=lambda c: (c["val_video_acc"], -c["val_loss"]))
    return {"chosen": best, "cells": cells, "seed": seed}


def _mean_std(vals: list[float]) -> dict[str, Any]:
    from soccerkd.train.sweep import mean_std

    mean, std = mean_std(vals)
    return {"mean": mean, "std": std, "values": vals}


def teacher_calibration(out: Path, teacher_seed: int, temperatures: list[float], args: argparse.Namespace) -> dict[str, Any]:
    """The frozen teacher on the val clips: accuracy, mean top-class probability at each T, and ECE at T=1."""
    import numpy as np
    import torch

    from soccerkd.config import load_config
    from soccerkd.train.checkpoint import load_model
    from soccerkd.train.config import TrainConfig
    from soccerkd.train.data import build_split
    from soccerkd.train.loop import predict
    from soccerkd.data.transforms import DeviceNormalize

    cfg = load_config(TrainConfig, args.kd_config, args.overrides)
    model, spec, _ = load_model(out / Path(args.teacher_config).stem / f"seed{teacher_seed}" / "best.pt")
    d = cfg.data
    ds = build_split(d.root, spec, "val", manifest=manifests(args)[1], clips_per_video=d.eval_clips,
                     cache=d.cache, fast=d.fast_loader)
    loader = torch.utils.data.DataLoader(ds, batch_size=d.eval_batch_size)
    logits, labels, _ = predict(model, loader, progress=False, prepare=DeviceNormalize(spec))
    logits = torch.from_numpy(logits).double()
    report: dict[str, Any] = {"val_clip_acc": float((logits.argmax(1).numpy() == labels).mean())}
    for t in [1.0, *temperatures]:
        p = torch.softmax(logits / t, 1)
        report[f"mean_top_prob_T{t:g}"] = float(p.max(1).values.mean())
    p = torch.softmax(logits, 1).numpy()
    conf, pred = p.max(1), p.argmax(1)
    bins = np.linspace(0, 1, 11)
    ece = sum(abs((pred[m] == labels[m]).mean() - conf[m].mean()) * m.mean()
              for lo, hi in zip(bins[:-1], bins[1:]) if (m := (conf > lo) & (conf <= hi)).any())
    report["ece_T1"] = float(ece)
    return report


def table(out: Path, args: argparse.Namespace) -> dict[str, Any]:
    choice = json.loads((out / "choice.json").read_text())
    a, t = choice["chosen"]["alpha"], choice["chosen"]["temperature"]
    stem = {k: Path(getattr(args, f"{k}_config")).stem for k in ("teacher", "student", "kd")}
    groups = {"teacher": (stem["teacher"], args.teacher_seeds), "student": (stem["student"], args.seeds),
              "kd": (f"{stem['kd']}/a{a:g}_T{t:g}", args.seeds)}
    rows = {}
    for name, (tag, seeds) in groups.items():
        runs = _summaries(out, tag, seeds)
        if not runs:
            continue
        rows[name] = {"tag": tag, "seeds": [r["seed"] for r in runs],
                      **{k: _mean_std([r[k] for r in runs]) for k in ("best_val_video_acc", "test_video_acc",
                                                                       "test_clip_acc", "train_seconds")},
                      "best_epoch": [r["best_epoch"] for r in runs]}
    report = {"choice": choice, "rows": rows,
              "teacher_calibration_val": teacher_calibration(out, args.teacher_seeds[0], args.temperatures, args)}
    pct = lambda v: f"{100 * v['mean']:.1f} ± {100 * v['std']:.1f}"  # noqa: E731
    lines = ["| model | seeds | val video acc | test video acc | test clip acc | best epochs | train s (mean) |",
             "|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        label = name if name != "kd" else f"KD student (α {a:g}, T {t:g}, chosen on val)"
        lines.append(f"| {label} | {','.join(map(str, r['seeds']))} | {pct(r['best_val_video_acc'])} | "
                     f"{pct(r['test_video_acc'])} | {pct(r['test_clip_acc'])} | {r['best_epoch']} | "
                     f"{r['train_seconds']['mean']:.0f} |")
    if {"student", "kd"} <= rows.keys():
        diff = 100 * (rows["kd"]["test_video_acc"]["mean"] - rows["student"]["test_video_acc"]["mean"])
        lines.append(f"\nKD − student, test video accuracy: {diff:+.1f} points")
    if {"student", "teacher"} <= rows.keys():
        diff = 100 * (rows["teacher"]["test_video_acc"]["mean"] - rows["student"]["test_video_acc"]["mean"])
        lines.append(f"teacher − student, test video accuracy: {diff:+.1f} points")
    lines += ["", f"α × T grid, seed {choice['seed']}, val only (best val video accuracy of each run):", "",
              "| α | T | val video acc | val loss | chosen |", "|---|---|---|---|---|"]
    for c in choice["cells"]:
        mark = "yes" if (c["alpha"], c["temperature"]) == (a, t) else ""
        lines.append(f"| {c['alpha']:g} | {c['temperature']:g} | {100 * c['val_video_acc']:.1f} | "
                     f"{c['val_loss']:.3f} | {mark} |")
    cal = report["teacher_calibration_val"]
    lines += ["", "teacher on val clips: " + ", ".join(f"{k} {v:.3f}" for k, v in cal.items())]
    (out / "recipe.md").write_text("\n".join(lines) + "\n")
    (out / "recipe.json").write_text(json.dumps(report, indent=2))
    print("\n".join(lines))
    if args.plot:
        from soccerkd.train.plots import plot_val_accuracy

        labels = {"teacher": f"teacher ({stem['teacher']})", "student": f"student ({stem['student']})",
                  "kd": f"KD student (α {a:g}, T {t:g})"}
        plot_val_accuracy({labels[n]: [out / r["tag"] / f"seed{s}" for s in r["seeds"]] for n, r in rows.items()},
                          args.plot, title=args.title, chance=0.25)
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/cpu_kd"))
    ap.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)}")
    ap.add_argument("--student-per-class", type=int, default=150)
    ap.add_argument("--seeds", type=_ints, default=[0, 1, 2])
    ap.add_argument("--teacher-seeds", type=_ints, default=[0])
    ap.add_argument("--grid-seed", type=int, default=0)
    ap.add_argument("--alphas", type=_floats, default=[0.5, 0.9])
    ap.add_argument("--temperatures", type=_floats, default=[2.0, 4.0, 8.0])
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for every run (e.g. epochs=2 for a smoke run)")
    ap.add_argument("--plot", type=Path, default=None, help="val-accuracy-per-epoch PNG (table stage)")
    ap.add_argument("--title", default="CPU KD recipe, generator v3, 32 px (one line per seed)")
    for name in ("teacher", "student", "kd"):
        ap.add_argument(f"--{name}-config", default=str(CONFIGS[name]), help=f"default {CONFIGS[name].relative_to(ROOT)}")
    args = ap.parse_args(argv)
    stages = [s for s in args.stages.split(",") if s]
    unknown = set(stages) - set(STAGES)
    if unknown:
        ap.error(f"unknown stages {sorted(unknown)}; choose from {STAGES}")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    teacher_manifest, student_manifest = manifests(args)
    t_set = args.overrides + [f"data.manifest={teacher_manifest}"]
    s_set = args.overrides + [f"data.manifest={student_manifest}"]
    kd_stem = Path(args.kd_config).stem
    if "manifest" in stages:
        from soccerkd.data.splits import read_manifest, subset_train, write_manifest

        full = read_manifest(teacher_manifest)
        path = write_manifest(subset_train(full, args.student_per_class, seed=0), student_manifest)
        print(f"wrote {path}: train {sum(read_manifest(path).counts()['train'].values())} videos "
              f"(of {sum(full.counts()['train'].values())}), val/test unchanged")
    if "teacher" in stages:
        _sweep(args.teacher_config, args.teacher_seeds, out, t_set)
    if "student" in stages:
        _sweep(args.student_config, args.seeds, out, s_set)
    if "grid" in stages:
        _sweep(args.kd_config, [args.grid_seed], out, s_set, args.alphas, args.temperatures)
    if "kd" in stages or "table" in stages:
        choice = choose_cell(out, kd_stem, args.alphas, args.temperatures, args.grid_seed)
        (out / "choice.json").write_text(json.dumps(choice, indent=2))
        c = choice["chosen"]
        print(f"chosen on val (seed {args.grid_seed}): α {c['alpha']:g}, T {c['temperature']:g}, "
              f"val video acc {100 * c['val_video_acc']:.1f}")
    if "kd" in stages:
        _sweep(args.kd_config, args.seeds, out, s_set, [c["alpha"]], [c["temperature"]])
    if "table" in stages:
        table(out, args)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
