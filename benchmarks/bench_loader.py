"""Training data loader throughput, before and after the fast loader (issue 12), side by side.

Both paths decode each video once (``cache: memory``, preloaded before timing). *before*: every
item converts the clip to float, resizes it (antialiased bilinear) and normalises it in the worker.
*after* (``data.fast_loader: true``): the cache holds each video already resized, an item is a uint8
crop (a slice) without augmentation, or with ``--augment`` the clip's uint8 frames plus a crop box and
flip drawn in the worker, and ``DeviceNormalize`` crops, resizes, flips, scales and normalises the
batch on the device. Rounds alternate before/after so that a shared machine's load hits both.

    python benchmarks/bench_loader.py --data data/synth_v3 --size 64 --resize 72 --items 600 --rounds 3

Prints a table and writes JSON (``--out``). Loader only: no model, so the clips/s are what the
loader can feed, not training speed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from soccerkd.train.loop import to_device


def _loader(ds, batch: int, workers: int):
    return torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers,
                                       generator=torch.Generator().manual_seed(0), collate_fn=ds.collate_fn)


def _time(ds, prepare, *, items: int, batch: int, workers: int, device: torch.device) -> float:
    seen, t0 = 0, time.perf_counter()
    while seen < items:
        for clips, _, _ in _loader(ds, batch, workers):
            clips = to_device(clips, device)
            if prepare is not None:
                clips = prepare(clips)
            if device.type == "cuda":
                torch.cuda.synchronize()
            seen += clips.shape[0]
            if seen >= items:
                break
    return seen / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    from soccerkd.data.datasets import SoccerDB1
    from soccerkd.data.transforms import DeviceNormalize
    from soccerkd.spec import IMAGENET_MEAN, IMAGENET_STD, SOCCERDB1_CLASSES, ClipSpec, InputSpec

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--resize", type=int, default=72)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--stride", type=int, default=3)
    ap.add_argument("--augment", action="store_true", help="random resized crop + flip (training augmentation)")
    ap.add_argument("--items", type=int, default=600, help="clips per timing")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    spec = InputSpec(clip=ClipSpec(num_frames=args.frames, frame_stride=args.stride), size=args.size,
                     resize=args.resize, mean=IMAGENET_MEAN, std=IMAGENET_STD, class_names=SOCCERDB1_CLASSES)
    sets = {}
    for name, fast in (("before", False), ("after", True)):
        t0 = time.perf_counter()
        ds = SoccerDB1(args.data, spec, split="train", train=args.augment, sampling="random", cache="memory",
                       seed=0, fast=fast).preload(progress=False)
        sets[name] = (ds, DeviceNormalize(spec).to(device) if fast else None, time.perf_counter() - t0)
    # one untimed batch per path first: the first roi_align call loads and initialises its kernels
    # (seconds on a CPU), which is start-up, not throughput
    for ds, prep, _ in sets.values():
        _time(ds, prep, items=1, batch=args.batch, workers=0, device=device)
    runs: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(args.rounds):
        for name in ("before", "after"):
            ds, prep, _ = sets[name]
            runs[name].append(_time(ds, prep, items=args.items, batch=args.batch, workers=args.workers, device=device))
    report = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, device {device}",
              "args": {k: str(v) for k, v in vars(args).items()},
              "preload_s": {k: v[2] for k, v in sets.items()}, "clips_per_s": runs}
    print(f"loader clips/s ({args.items} clips x {args.rounds} rounds, batch {args.batch}, {args.workers} workers, "
          f"{args.threads} thread(s), {device}, augment={args.augment})")
    print("| path | preload s | clips/s per round | median |")
    print("|---|---|---|---|")
    for name in ("before", "after"):
        vals = sorted(runs[name])
        print(f"| {name} | {sets[name][2]:.1f} | {', '.join(f'{v:.0f}' for v in runs[name])} | {vals[len(vals) // 2]:.0f} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
