"""The shipped demo student (``stream/assets/demo_student.pt``), end to end: teacher, KD with α and T
chosen on val, int8 compact, size and CPU speed (issue 25, item 1). docs/results.md has the figures.

    python benchmarks/demo_student.py --out runs/demo_v3 --seeds 0,1,2 --jobs 2

Stages (``--stages``, default all, in this order; finished runs are reused, as in ``soccerkd sweep``):

0. ``data``: ``--matches`` procedural matches of generator ``--version`` at 64×48 (random timelines,
   ``soccerkd.data.synth.generate_match_clips``), cut into 24-frame labelled clips, split by match,
   into ``--data`` (skipped when its manifest exists). The demo's windows come from such a match.
1. ``teacher``: ``configs/train/demo_v3_teacher.yaml`` (seed ``--seed``), on the whole training split.
2. ``grid``: ``configs/train/demo_v3_kd.yaml`` for each (α, T) of ``--cells`` (default α ∈ {0.5, 0.7,
   0.9} × T ∈ {2, 4, 8}) and each of ``--seeds``, distilled from that teacher; ``--jobs N`` trains N
   runs at once as processes (``--launch-until`` time-boxes it). Without augmentation the runs can
   share one file of the teacher's logits (``--set kd.teacher_cache=...``, see the KD config), so
   the teacher runs once per distinct clip for the grid; the configs now augment, so it runs on
   every batch.
   The cell with the best **mean** val video accuracy over the seeds (ties: lower mean val loss) is
   chosen, then its seed with the best val accuracy; test is not read for the choice.
3. ``ship``: the chosen run's ``best.pt`` compacted to int8 (``soccerkd.compact``) and written to
   ``--ship`` (default the shipped asset); its test figures (read once, after the choice), its size
   (parameters, file MB) and its CPU speed (clips/s of the loaded checkpoint's model, ``--threads``
   torch threads, batch 1 and the service's batch 16, median of ``--rounds`` rounds) go to
   ``<out>/demo_student.json``, the α × T table (mean ± std over seeds) to ``<out>/grid.json`` and
   ``<out>/grid.png``, and both to stdout.

``benchmarks/demo_student_device.sh`` runs all four stages as one call on a GPU machine.

The checkpoint records the generator version of its training clips (``synth`` in the checkpoint,
from the data's manifest), and ``soccerkd demo`` renders its match with that version.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEACHER = ROOT / "configs" / "train" / "demo_v3_teacher.yaml"
KD = ROOT / "configs" / "train" / "demo_v3_kd.yaml"
SHIPPED = ROOT / "stream" / "assets" / "demo_student.pt"
STAGES = ("data", "teacher", "grid", "ship")
DATA = Path("data/synth_v3_match64")
GRID = "0.5:2,0.5:4,0.5:8,0.7:2,0.7:4,0.7:8,0.9:2,0.9:4,0.9:8"


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def _best_val(run_dir: Path) -> tuple[float, float, int]:
    """(best val video acc, its val loss, its epoch) from a run's metrics.json, as the runner selects."""
    rows = json.loads((run_dir / "metrics.json").read_text())
    best = max(rows, key=lambda r: (r["val_video_acc"], -r["val_loss"]))
    return best["val_video_acc"], best["val_loss"], best["epoch"]


def _cells(text: str) -> list[tuple[float, float]]:
    """``"0.5:4,0.9:8"`` -> [(0.5, 4.0), (0.9, 8.0)]."""
    out = []
    for item in text.split(","):
        a, _, t = item.partition(":")
        out.append((float(a), float(t)))
    return out


def choose_cell(out: Path, cells_at: list[tuple[float, float]], seeds: list[int]) -> dict[str, Any]:
    """The (α, T) cell with the best **mean** val video accuracy over ``seeds`` (ties: lower mean val
    loss), then that cell's seed with the best val video accuracy: val only, test is not read."""
    cells = []
    for a, t in cells_at:
        runs = []
        for seed in seeds:
            run = out / KD.stem / f"a{a:g}_T{t:g}" / f"seed{seed}"
            if not (run / "metrics.json").is_file():
                raise SystemExit(f"grid cell {run} has not run yet; run --stages grid first")
            acc, loss, epoch = _best_val(run)
            runs.append({"seed": seed, "val_video_acc": acc, "val_loss": loss, "best_epoch": epoch, "run": str(run)})
        accs = [r["val_video_acc"] for r in runs]
        cells.append({"alpha": a, "temperature": t, "val_video_acc": statistics.fmean(accs),
                      "val_video_acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                      "val_loss": statistics.fmean(r["val_loss"] for r in runs), "runs": runs})
    chosen = max(cells, key=lambda c: (c["val_video_acc"], -c["val_loss"]))
    best_run = max(chosen["runs"], key=lambda r: (r["val_video_acc"], -r["val_loss"]))
    return {"chosen": {**chosen, "seed": best_run["seed"], "run": best_run["run"]}, "cells": cells, "seeds": seeds}


def completed_seeds(out: Path, cells_at: list[tuple[float, float]], seeds: list[int]) -> list[int]:
    """The seeds every cell has finished (a time-boxed grid may leave the last seed partial)."""
    return [s for s in seeds if all((out / KD.stem / f"a{a:g}_T{t:g}" / f"seed{s}" / "summary.json").is_file()
                                    for a, t in cells_at)]


def run_grid_parallel(args: argparse.Namespace, seeds: list[int]) -> None:
    """Train the grid's (cell, seed) runs as ``--jobs`` concurrent processes (seed-major, so whole
    seeds finish first), starting none that would end after ``--launch-until`` seconds (judged by the
    longest finished run); each process is this script's
    ``grid`` stage for one cell and seed, so run dirs and configs are the sequential ones."""
    import subprocess

    logs = args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    todo = [(s, a, t) for s in seeds for a, t in args.cells
            if not (args.out / KD.stem / f"a{a:g}_T{t:g}" / f"seed{s}" / "summary.json").is_file()]
    running: list[tuple[subprocess.Popen, str, float]] = []
    t0 = time.monotonic()
    longest = 0.0   # the longest run finished so far: how long the next one is expected to take
    while todo or running:
        for proc, tag, started in list(running):
            if proc.poll() is not None:
                running.remove((proc, tag, started))
                longest = max(longest, time.monotonic() - started)
                print(f"[{time.monotonic() - t0:.0f} s] {tag} exited {proc.returncode} "
                      f"after {time.monotonic() - started:.0f} s", flush=True)
        late = args.launch_until is not None and time.monotonic() - t0 + longest > args.launch_until
        if late and todo:
            print(f"[{time.monotonic() - t0:.0f} s] a run started now would end after --launch-until "
                  f"{args.launch_until:g} s (longest run {longest:.0f} s): {len(todo)} runs not started", flush=True)
            todo = []
        while todo and len(running) < args.jobs:
            s, a, t = todo.pop(0)
            tag = f"a{a:g}_T{t:g}_seed{s}"
            cmd = [sys.executable, str(Path(__file__).resolve()), "--stages", "grid", "--out", str(args.out),
                   "--data", str(args.data), "--cells", f"{a:g}:{t:g}", "--seeds", str(s), "--seed", str(args.seed)]
            for o in args.overrides:
                if not o.startswith(("data.root=", "data.manifest=")):
                    cmd += ["--set", o]
            running.append((subprocess.Popen(cmd, stdout=open(logs / f"{tag}.log", "w"), stderr=subprocess.STDOUT),
                            tag, time.monotonic()))
            print(f"[{time.monotonic() - t0:.0f} s] started {tag}", flush=True)
        time.sleep(1.0)


def grid_table(choice: dict[str, Any], out: Path) -> str:
    """α × T table of mean ± std val video accuracy over the seeds, as markdown; writes ``grid.json``
    and, where matplotlib is present, a heat map ``grid.png``."""
    alphas = sorted({c["alpha"] for c in choice["cells"]})
    temps = sorted({c["temperature"] for c in choice["cells"]})
    at = {(c["alpha"], c["temperature"]): c for c in choice["cells"]}
    ch = choice["chosen"]
    lines = [f"val video accuracy (%), mean ± std over seeds {choice['seeds']}; rows α, columns T; * chosen",
             "| α \\ T | " + " | ".join(f"{t:g}" for t in temps) + " |", "|---" * (len(temps) + 1) + "|"]
    for a in alphas:
        row = []
        for t in temps:
            c = at.get((a, t))
            mark = "*" if c is not None and (a, t) == (ch["alpha"], ch["temperature"]) else ""
            row.append("—" if c is None else f"{100 * c['val_video_acc']:.1f} ± {100 * c['val_video_acc_std']:.1f}{mark}")
        lines.append(f"| {a:g} | " + " | ".join(row) + " |")
    (out / "grid.json").write_text(json.dumps(choice, indent=2) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "\n".join(lines)
    import numpy as np

    grid = np.full((len(alphas), len(temps)), np.nan)
    for (a, t), c in at.items():
        grid[alphas.index(a), temps.index(t)] = 100 * c["val_video_acc"]
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(temps), 1.2 + 0.8 * len(alphas)))
    im = ax.imshow(grid, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(temps)), [f"{t:g}" for t in temps])
    ax.set_yticks(range(len(alphas)), [f"{a:g}" for a in alphas])
    ax.set_xlabel("T")
    ax.set_ylabel("α")
    for (a, t), c in at.items():
        star = "*" if (a, t) == (ch["alpha"], ch["temperature"]) else ""
        ax.text(temps.index(t), alphas.index(a), f"{100 * c['val_video_acc']:.1f}\n±{100 * c['val_video_acc_std']:.1f}{star}",
                ha="center", va="center", color="w", fontsize=8)
    fig.colorbar(im, ax=ax, label="val video acc (%)")
    ax.set_title(f"KD α × T, mean over seeds {choice['seeds']}")
    fig.tight_layout()
    fig.savefig(out / "grid.png", dpi=120)
    plt.close(fig)
    return "\n".join(lines)


def cpu_speed(checkpoint: Path, *, threads: int, batches: tuple[int, ...] = (1, 16), rounds: int = 5) -> dict[str, Any]:
    """Clips/s of the checkpoint's model on the CPU (fp32 after int8 expansion, as the service runs it):
    random clips of the checkpoint's input shape, median over ``rounds`` timed rounds after one warm-up."""
    import torch

    from soccerkd.train.checkpoint import load_model

    torch.set_num_threads(threads)
    model, spec, _ = load_model(checkpoint)
    shape = (3, spec.clip.num_frames, spec.size, spec.size)
    out: dict[str, Any] = {"threads": threads, "input": list(shape)}
    with torch.inference_mode():
        for b in batches:
            x = torch.randn(b, *shape)
            model(x)
            times = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - t0)
            out[f"clips_per_s_batch{b}"] = b / statistics.median(times)
    return out


def ship(out: Path, choice: dict[str, Any], dest: Path, *, threads: int, rounds: int,
         teacher_seed: int = 0) -> dict[str, Any]:
    from soccerkd.compact import compact_checkpoint
    from soccerkd.train.checkpoint import load_checkpoint, save_checkpoint, synth_version

    run = Path(choice["chosen"]["run"])
    ckpt = load_checkpoint(run / "best.pt")
    if synth_version(ckpt) is None:
        raise SystemExit(f"{run / 'best.pt'} records no generator version (trained on data without a synth "
                         f"manifest record); the demo could not render a match of its kind")
    save_checkpoint(dest, **compact_checkpoint(ckpt))
    summary = json.loads((run / "summary.json").read_text())
    params = sum(v.numel() for k, v in ckpt["model_state"].items() if not k.endswith(("running_mean", "running_var",
                                                                                      "num_batches_tracked")))
    report = {"choice": choice, "shipped": str(dest), "generator_version": synth_version(ckpt),
              "teacher": ckpt.get("teacher"), "model": ckpt["model_name"], "model_kwargs": ckpt.get("model_kwargs"),
              "parameters": params, "file_mb": dest.stat().st_size / 1e6,
              "fp32_file_mb": (run / "best.pt").stat().st_size / 1e6,
              "test_video_acc": summary.get("test_video_acc"), "test_clip_acc": summary.get("test_clip_acc"),
              "best_val_video_acc": summary.get("best_val_video_acc"),
              "cpu": cpu_speed(dest, threads=threads, rounds=rounds)}
    teacher_summary = out / Path(TEACHER).stem / f"seed{teacher_seed}" / "summary.json"
    if teacher_summary.is_file():
        t = json.loads(teacher_summary.read_text())
        report["teacher_test_video_acc"] = t.get("test_video_acc")
        report["teacher_best_val_video_acc"] = t.get("best_val_video_acc")
    (out / "demo_student.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def print_report(report: dict[str, Any], out: Path) -> None:
    c = report["choice"]["chosen"]
    print("\nα × T grid, val only:")
    print(grid_table(report["choice"], out))
    print(f"chosen: α {c['alpha']:g}, T {c['temperature']:g}; shipped seed {c['seed']} (best val of that cell)")
    cpu = report["cpu"]
    if "teacher_test_video_acc" in report:
        print(f"\nteacher: best val video acc {100 * report['teacher_best_val_video_acc']:.1f}%, "
              f"test video acc {100 * report['teacher_test_video_acc']:.1f}%")
    print(f"shipped {report['shipped']}: {report['model']} {report['model_kwargs']}, generator v{report['generator_version']}, "
          f"{report['parameters'] / 1e6:.2f} M parameters, {report['file_mb']:.2f} MB int8 "
          f"({report['fp32_file_mb']:.2f} MB fp32 best.pt); test video acc {100 * report['test_video_acc']:.1f}%, "
          f"clip acc {100 * report['test_clip_acc']:.1f}%")
    print(f"CPU ({cpu['threads']} thread(s), input {cpu['input']}): "
          + ", ".join(f"{v:.0f} clips/s at {k.removeprefix('clips_per_s_')}" for k, v in cpu.items()
                      if k.startswith("clips_per_s")))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    ap.add_argument("--out", type=Path, default=Path("runs/demo_v3"))
    ap.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--matches", type=int, default=240)
    ap.add_argument("--version", type=int, default=3, help="generator version of the matches")
    ap.add_argument("--data-seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cells", type=_cells, default=_cells(GRID), metavar="A:T,A:T",
                    help=f"the (α, T) cells of the KD sweep (default {GRID})")
    ap.add_argument("--seeds", default=None, metavar="S,S",
                    help="seeds of the KD grid (default: --seed); the teacher is always --seed's")
    ap.add_argument("--jobs", type=int, default=1,
                    help="grid runs trained at once, as separate processes (e.g. on one GPU); 1 = in this process")
    ap.add_argument("--launch-until", type=float, default=None, metavar="S",
                    help="with --jobs > 1: start no grid run that would end after S seconds from the grid's "
                         "start, judged by the longest run finished so far (a time-boxed grid; the choice uses "
                         "the seeds every cell finished)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for every run (e.g. epochs=1 for a smoke run)")
    ap.add_argument("--ship", type=Path, default=SHIPPED, help="where the compact student goes")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the CPU speed reading")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    stages = [s for s in args.stages.split(",") if s]
    unknown = set(stages) - set(STAGES)
    if unknown:
        ap.error(f"unknown stages {sorted(unknown)}; choose from {STAGES}")
    if args.jobs < 1:
        ap.error(f"--jobs must be >= 1, got {args.jobs}")
    seeds = [int(v) for v in args.seeds.split(",") if v] if args.seeds else [args.seed]
    if args.data != DATA:   # the configs read the default data folder
        args.overrides = [f"data.root={args.data}", f"data.manifest={args.data / 'manifest.json'}", *args.overrides]
    from soccerkd.train.sweep import run_sweep

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    if "data" in stages and not (args.data / "manifest.json").is_file():
        from soccerkd.data.synth import SynthConfig, generate_match_clips

        r = generate_match_clips(args.data, matches=args.matches, seed=args.data_seed, workers=args.workers,
                                 cfg=SynthConfig(width=64, height=48, num_frames=24, fps=25.0, version=args.version))
        print(f"wrote {r['clips']} clips from {r['matches']} matches to {args.data} in {r['seconds']:.0f} s: {r['counts']}")
    if "teacher" in stages:
        run_sweep([TEACHER], seeds=[args.seed], out=out, overrides=args.overrides)
    if "grid" in stages:
        if args.jobs > 1:
            run_grid_parallel(args, seeds)
            seeds = completed_seeds(out, args.cells, seeds)
            if not seeds:
                raise SystemExit("no seed finished every grid cell; see the logs under " + str(out / "logs"))
        # sequential, or (after the parallel pass) reusing every finished run: one sweep.json for the grid
        for a, t in args.cells:
            run_sweep([KD], seeds=seeds, out=out, alphas=[a], temperatures=[t], overrides=args.overrides)
    if "ship" in stages:
        seeds = completed_seeds(out, args.cells, seeds) or seeds
        choice = choose_cell(out, args.cells, seeds)
        print_report(ship(out, choice, args.ship, threads=args.threads, rounds=args.rounds, teacher_seed=args.seed),
                     out)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
