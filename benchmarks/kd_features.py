"""Distillation on generator-v3 clip features: does soccerkd's KD loss help when the teacher is better?

A cheap stand-in for the video experiment, for diagnosis (seconds on one CPU core, no rendering):
the clips are simulated exactly as ``soccerkd data synth --version 3`` would render them, and each
clip is described by what it shows over 8 frames (``soccerkd.data.probe``: per-frame pose and ball
features plus the target's displacement). Three models, the same 600 training clips:

* **teacher**: a wide MLP (3×256) trained long (4000 steps);
* **student**: a narrow MLP (1×16 hidden units) trained for ``--student-steps`` steps, labels only;
* **KD student**: the same narrow MLP and steps, loss ``soccerkd.kd.kd_loss`` against the frozen
  teacher's logits; α and T chosen on **val** (best mean val accuracy over seeds); test reported
  for the chosen cell only.

    python benchmarks/kd_features.py --seeds 0,1,2 --out runs/kd_features.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn


def _mlp(d_in: int, hidden: int, layers: int, classes: int = 4) -> nn.Module:
    mods: list[nn.Module] = []
    d = d_in
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), nn.ReLU()]
        d = hidden
    return nn.Sequential(*mods, nn.Linear(d, classes))


def _train(net: nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int, seed: int,
           teacher_logits: torch.Tensor | None = None, alpha: float = 0.0, temperature: float = 1.0) -> nn.Module:
    from soccerkd.kd import kd_loss

    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
    for _ in range(steps):
        b = torch.randint(0, len(x), (64,), generator=gen)
        out = net(x[b])
        if teacher_logits is None:
            loss = nn.functional.cross_entropy(out, y[b])
        else:
            loss = kd_loss(out, teacher_logits[b], y[b], alpha=alpha, temperature=temperature)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def _acc(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((net(x).argmax(1) == y).float().mean())


def _ms(vals: list[float]) -> str:
    return f"{100 * statistics.fmean(vals):.1f} ± {100 * (statistics.stdev(vals) if len(vals) > 1 else 0):.1f}"


def main(argv: list[str] | None = None) -> int:
    from soccerkd.data.probe import simulate_features
    from soccerkd.data.synth import SynthConfig

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--student-steps", type=int, default=300)
    ap.add_argument("--student-clips", type=int, default=150,
                    help="training clips per class the students see (the teacher sees all 150: 'more data')")
    ap.add_argument("--alphas", default="0.3,0.5,0.7,0.9")
    ap.add_argument("--temperatures", default="2,4,8")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    cfg = SynthConfig(128, 96, 24, version=3)
    parts = {"train": (150, 0), "val": (60, 150), "test": (60, 210)}
    data = {}
    for name, (n, first) in parts.items():
        f, m, y = simulate_features(cfg, clips_per_class=n, seed=1, first_index=first)
        data[name] = (np.concatenate([f, m], 2).reshape(len(y), -1), y)
    mu, sd = data["train"][0].mean(0), data["train"][0].std(0) + 1e-6
    t = {k: (torch.from_numpy((x - mu) / sd).float(), torch.from_numpy(y).long()) for k, (x, y) in data.items()}
    d_in = t["train"][0].shape[1]
    # the students' subset: the first student_clips clips of each class
    sub = torch.from_numpy(np.concatenate([np.flatnonzero(data["train"][1] == c)[:args.student_clips]
                                           for c in range(4)]))
    seeds = [int(s) for s in args.seeds.split(",")]
    alphas = [float(a) for a in args.alphas.split(",")]
    temps = [float(v) for v in args.temperatures.split(",")]
    res: dict[str, dict[str, list[float]]] = {}
    diag: dict[str, list[float]] = {}

    def record(cell: str, net: nn.Module) -> None:
        r = res.setdefault(cell, {"val": [], "test": []})
        r["val"].append(_acc(net, *t["val"]))
        r["test"].append(_acc(net, *t["test"]))

    for seed in seeds:
        torch.manual_seed(seed)
        teacher = _train(_mlp(d_in, 256, 3), *t["train"], steps=4000, seed=seed)
        record("teacher", teacher)
        xs, ys = t["train"][0][sub], t["train"][1][sub]
        with torch.no_grad():
            tl = teacher(xs)
        # diagnosis: how soft are the targets the student is distilled towards (teacher on its own
        # training clips) compared with the same teacher on held-out clips?
        with torch.no_grad():
            vl = teacher(t["val"][0])
        for name, logits in (("train", tl), ("val", vl)):
            for temp in temps:
                p = torch.softmax(logits / temp, 1)
                diag.setdefault(f"teacher p_max on {name}, T={temp:g}", []).append(float(p.max(1).values.mean()))
        diag.setdefault("teacher train acc", []).append(_acc(teacher, *t["train"]))
        torch.manual_seed(100 + seed)
        base = _train(_mlp(d_in, 16, 1), xs, ys, steps=args.student_steps, seed=seed)
        record("student", base)
        diag.setdefault("student train acc (its clips)", []).append(_acc(base, xs, ys))
        for a in alphas:
            for temp in temps:
                torch.manual_seed(100 + seed)  # the same initial student as the baseline
                net = _train(_mlp(d_in, 16, 1), xs, ys, steps=args.student_steps, seed=seed,
                             teacher_logits=tl, alpha=a, temperature=temp)
                record(f"kd a{a:g} T{temp:g}", net)
    kd_cells = [c for c in res if c.startswith("kd")]
    chosen = max(kd_cells, key=lambda c: statistics.fmean(res[c]["val"]))
    print(f"v3 clip features, train/val/test 600/240/240 clips, students see {4 * args.student_clips} of the 600, "
          f"seeds {seeds}, student {args.student_steps} steps "
          f"({time.perf_counter() - t0:.0f} s)")
    print("| cell | val acc | test acc |")
    print("|---|---|---|")
    for cell in ["teacher", "student", *kd_cells]:
        shown = cell in ("teacher", "student") or cell == chosen
        print(f"| {cell}{' (chosen on val)' if cell == chosen else ''} | {_ms(res[cell]['val'])} | "
              f"{_ms(res[cell]['test']) if shown else '(val only)'} |")
    print("\n| teacher diagnostic (mean over seeds) | value |\n|---|---|")
    for k, v in diag.items():
        print(f"| {k} | {statistics.fmean(v):.3f} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        report = {"seeds": seeds, "chosen": chosen, "student_steps": args.student_steps,
                  "student_clips_per_class": args.student_clips, "diagnostics": diag,
                  "cells": {c: ({"val": v["val"], "test": v["test"]} if c in ("teacher", "student", chosen)
                                else {"val": v["val"]}) for c, v in res.items()}}
        args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
