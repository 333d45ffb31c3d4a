"""The shipped demo student (``stream/assets/demo_student.pt``), end to end: teacher, KD with α and T
chosen on val, int8 compact, size and CPU speed (issue 25, item 1). docs/results.md has the figures.

    python benchmarks/demo_student.py --out runs/demo_v3

Stages (``--stages``, default all, in this order; finished runs are reused, as in ``soccerkd sweep``):

0. ``data``: ``--matches`` procedural matches of generator ``--version`` at 64×48 (random timelines,
   ``soccerkd.data.synth.generate_match_clips``), cut into 24-frame labelled clips, split by match,
   into ``--data`` (skipped when its manifest exists). The demo's windows come from such a match.
1. ``teacher``: ``configs/train/demo_v3_teacher.yaml`` (seed ``--seed``), on the whole training split.
2. ``grid``: ``configs/train/demo_v3_kd.yaml`` for each (α, T) of ``--cells`` (default α 0.5, T 4 and
   α 0.9, T 8: the old demo's cell and the CPU recipe's choice; two cells fit the CPU time), seed ``--seed``, distilled from that teacher. The cell with the best **val** video accuracy (ties:
   lower val loss) is chosen; test is not read for the choice.
3. ``ship``: the chosen cell's ``best.pt`` compacted to int8 (``soccerkd.compact``) and written to
   ``--ship`` (default the shipped asset); its test figures (read once, after the choice), its size
   (parameters, file MB) and its CPU speed (clips/s of the loaded checkpoint's model, ``--threads``
   torch threads, batch 1 and the service's batch 16, median of ``--rounds`` rounds) go to
   ``<out>/demo_student.json`` and a table on stdout.

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


def choose_cell(out: Path, cells_at: list[tuple[float, float]], seed: int) -> dict[str, Any]:
    """The (α, T) cell with the best val video accuracy (ties: lower val loss); val only."""
    cells = []
    for a, t in cells_at:
        run = out / KD.stem / f"a{a:g}_T{t:g}" / f"seed{seed}"
        if not (run / "metrics.json").is_file():
            raise SystemExit(f"grid cell {run} has not run yet; run --stages grid first")
        acc, loss, epoch = _best_val(run)
        cells.append({"alpha": a, "temperature": t, "val_video_acc": acc, "val_loss": loss, "best_epoch": epoch,
                      "run": str(run)})
    return {"chosen": max(cells, key=lambda c: (c["val_video_acc"], -c["val_loss"])), "cells": cells, "seed": seed}


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


def ship(out: Path, choice: dict[str, Any], dest: Path, *, threads: int, rounds: int) -> dict[str, Any]:
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
    teacher_summary = out / Path(TEACHER).stem / f"seed{choice['seed']}" / "summary.json"
    if teacher_summary.is_file():
        t = json.loads(teacher_summary.read_text())
        report["teacher_test_video_acc"] = t.get("test_video_acc")
        report["teacher_best_val_video_acc"] = t.get("best_val_video_acc")
    (out / "demo_student.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def print_report(report: dict[str, Any]) -> None:
    c = report["choice"]["chosen"]
    print("\nα × T grid, val only (seed {}):".format(report["choice"]["seed"]))
    print("| α | T | best val video acc | val loss | best epoch |\n|---|---|---|---|---|")
    for cell in report["choice"]["cells"]:
        mark = " (chosen)" if cell is c or (cell["alpha"], cell["temperature"]) == (c["alpha"], c["temperature"]) else ""
        print(f"| {cell['alpha']:g} | {cell['temperature']:g} | {100 * cell['val_video_acc']:.1f}{mark} | "
              f"{cell['val_loss']:.3f} | {cell['best_epoch']} |")
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
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/demo_v3"))
    ap.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=Path("data/synth_v3_match64"))
    ap.add_argument("--matches", type=int, default=240)
    ap.add_argument("--version", type=int, default=3, help="generator version of the matches")
    ap.add_argument("--data-seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cells", type=_cells, default=[(0.5, 4.0), (0.9, 8.0)], metavar="A:T,A:T",
                    help="the (α, T) cells of the KD sweep (default 0.5:4,0.9:8)")
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
        for a, t in args.cells:
            run_sweep([KD], seeds=[args.seed], out=out, alphas=[a], temperatures=[t], overrides=args.overrides)
    if "ship" in stages:
        choice = choose_cell(out, args.cells, args.seed)
        print_report(ship(out, choice, args.ship, threads=args.threads, rounds=args.rounds))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
