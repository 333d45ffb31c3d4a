"""Teacher vs student speed on the current device: clips/s, latency per clip, params, FLOPs, speedup.

Both models get the same random ``B×3×T×S×S`` input; timing rounds are interleaved (teacher then
student, order alternating each round) so background load hits both alike, and each model's median
round time is reported. FLOPs are counted once per model with ``torch.utils.flop_counter``
(multiply-add = 2 FLOPs) on one clip. Prints a table and writes JSON.

    python benchmarks/bench_models.py                       # small CPU run (< ~1 min on 2 cores)
    python benchmarks/bench_models.py --device cuda --frames 8 --size 224 --batch 32 \
        --iters 50 --warmup 10 --amp --channels-last --out bench_h200.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from soccerkd.models import create_model, model_entry


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", default="tsm_resnet101", help="registered teacher model")
    p.add_argument("--student", default="tsm_resnet18", help="registered student model")
    p.add_argument("--frames", type=int, default=8, help="clip length T")
    p.add_argument("--size", type=int, default=112, help="input height = width")
    p.add_argument("--batch", type=int, default=2, help="clips per forward")
    p.add_argument("--iters", type=int, default=10, help="timed rounds per model")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds per model first")
    p.add_argument("--num-classes", type=int, default=4)
    p.add_argument("--device", default=None, help="cuda if available, else cpu")
    p.add_argument("--amp", action="store_true", help="autocast to bfloat16 (meant for CUDA)")
    p.add_argument("--channels-last", action="store_true", help="channels_last(_3d) weights and input")
    p.add_argument("--out", type=Path, default=Path("bench_models.json"), help="JSON results file")
    args = p.parse_args(argv)
    for key in ("frames", "size", "batch", "iters"):
        if getattr(args, key) < 1:
            p.error(f"--{key.replace('_', '-')} must be >= 1, got {getattr(args, key)}")
    if args.warmup < 0:
        p.error(f"--warmup must be >= 0, got {args.warmup}")
    return args


def _memory_format(name: str) -> torch.memory_format:
    """Weight layout for --channels-last: TSM has 2D convs, the video ResNets 3D convs."""
    return torch.channels_last if model_entry(name).family == "tsm" else torch.channels_last_3d


def build(name: str, args: argparse.Namespace, device: torch.device) -> nn.Module:
    model = create_model(name, num_classes=args.num_classes, frames=args.frames).eval().to(device)
    if args.channels_last:
        model = model.to(memory_format=_memory_format(name))
    return model


def count_flops(model: nn.Module, clip: torch.Tensor) -> float:
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(clip)
    return float(counter.get_total_flops())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(model: nn.Module, clips: torch.Tensor, device: torch.device, amp: bool) -> float:
    ctx = torch.autocast(device_type=device.type, dtype=torch.bfloat16) if amp else nullcontext()
    _sync(device)
    start = time.perf_counter()
    with torch.inference_mode(), ctx:
        model(clips)
    _sync(device)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    roles = {"teacher": args.teacher, "student": args.student}
    models = {role: build(name, args, device) for role, name in roles.items()}
    shape = (args.batch, 3, args.frames, args.size, args.size)
    clips = torch.randn(*shape, device=device)
    one = clips[:1].contiguous()

    results: dict[str, dict[str, Any]] = {}
    if args.channels_last:
        # B×C×T×H×W in channels_last_3d order also makes TSM's (B·T)×C×H×W frame view channels_last.
        clips, one = (t.contiguous(memory_format=torch.channels_last_3d) for t in (clips, one))
    for role, model in models.items():
        results[role] = {"model": roles[role], "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
                         "gflops_per_clip": count_flops(model, one) / 1e9}

    times: dict[str, list[float]] = {role: [] for role in roles}
    order = list(roles)
    for i in tqdm(range(args.warmup + args.iters), desc=f"timing on {device}", file=sys.stderr):
        for role in (order if i % 2 == 0 else order[::-1]):
            elapsed = timed(models[role], clips, device, args.amp)
            if i >= args.warmup:
                times[role].append(elapsed)

    for role in roles:
        median = statistics.median(times[role])
        results[role].update(clips_per_s=args.batch / median, latency_ms_per_clip=1000 * median / args.batch,
                             batch_latency_ms_median=1000 * median, batch_latency_ms_min=1000 * min(times[role]))
    speedup = results["student"]["clips_per_s"] / results["teacher"]["clips_per_s"]
    report = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.processor() or platform.machine()})",
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "input": {"batch": args.batch, "frames": args.frames, "size": args.size, "shape": list(shape)},
        "amp_bf16": args.amp, "channels_last": args.channels_last, "iters": args.iters, "warmup": args.warmup,
        "teacher": results["teacher"], "student": results["student"],
        "speedup_student_over_teacher": speedup,
        "flops_ratio_teacher_over_student": results["teacher"]["gflops_per_clip"] / results["student"]["gflops_per_clip"],
    }
    print(f"device {report['device']}, torch {torch.__version__}, {report['threads']} threads, input "
          f"{'×'.join(map(str, shape))}, amp={args.amp}, channels_last={args.channels_last}, "
          f"{args.iters} interleaved rounds after {args.warmup} warm-up")
    print(f"| role | model | params (M) | GFLOPs/clip | clips/s | latency/clip (ms) |")
    print("|---|---|---:|---:|---:|---:|")
    for role in roles:
        r = results[role]
        print(f"| {role} | {r['model']} | {r['params_m']:.2f} | {r['gflops_per_clip']:.2f} | "
              f"{r['clips_per_s']:.2f} | {r['latency_ms_per_clip']:.1f} |")
    print(f"student/teacher speedup (clips/s ratio): {speedup:.2f}x; "
          f"FLOPs ratio teacher/student: {report['flops_ratio_teacher_over_student']:.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
