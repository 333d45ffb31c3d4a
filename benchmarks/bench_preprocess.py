"""Per-frame cost of each step of the CPU input path, and what a cheaper step would change.

    python benchmarks/bench_preprocess.py --frame-size 320x240
    python benchmarks/bench_preprocess.py --frame-size 320x240 --checkpoint demo   # + predictions

Part 1 times, on one thread, interleaved over ``--rounds`` (median µs per frame), the JPEG
decoders (OpenCV full size and at 1/2 draft, torchvision) and the resize filters to the model's
input (torch's antialiased bilinear, which training's evaluation transform and the service use,
against OpenCV's INTER_AREA and INTER_LINEAR and Pillow's bilinear). ``ceiling`` is decode ÷
(decode + resize): the best pipeline/raw-decode ratio any pipeline can reach with that filter.

Part 2 measures what decoding at 1/2 draft would change where the service's rule
(:func:`stream.inference.preprocess.draft_scale`: only while the reduced frame stays at least twice the
resize) refuses it: the mean and p99 absolute difference of the model input, in grey levels,
against the exact path, next to JPEG's own quantisation noise (the same frames before and after
the ingester's JPEG at ``--jpeg-quality``). Frames are procedural soccer clips. With
``--checkpoint``, its input spec is used and its top-1 predictions on both inputs are compared.

Prints a table and writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def per_frame_us(fn: Callable[[Any], Any], items: list[Any]) -> float:
    t0 = time.perf_counter()
    for item in items:
        fn(item)
    return (time.perf_counter() - t0) / len(items) * 1e6


def timings(jpegs: list[bytes], resize: int, size: int, rounds: int) -> dict[str, float]:
    import cv2
    import torch
    import torch.nn.functional as F
    from PIL import Image
    from torchvision.io import ImageReadMode, decode_jpeg

    from soccerkd.spec import resize_crop_box

    arrays = [np.frombuffer(j, np.uint8) for j in jpegs]
    tensors = [torch.frombuffer(bytearray(j), dtype=torch.uint8) for j in jpegs]
    rgb = [cv2.imdecode(a, cv2.IMREAD_COLOR_RGB) for a in arrays]
    h, w = rgb[0].shape[:2]
    nh, nw, _, _ = resize_crop_box(h, w, resize=resize, size=size)
    chw = [torch.from_numpy(x).permute(2, 0, 1)[None] for x in rgb]   # channels-last, as the service has it
    pil = [Image.fromarray(x) for x in rgb]
    steps: dict[str, tuple[Callable[[Any], Any], list[Any]]] = {
        "decode cv2.imdecode": (lambda a: cv2.imdecode(a, cv2.IMREAD_COLOR_RGB), arrays),
        "decode cv2 1/2 draft": (lambda a: cv2.imdecode(a, cv2.IMREAD_REDUCED_COLOR_2), arrays),
        "decode torchvision": (lambda t: decode_jpeg(t, mode=ImageReadMode.RGB), tensors),
        "resize torch antialiased bilinear (training's)": (
            lambda x: F.interpolate(x, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False), chw),
        "resize cv2 INTER_AREA": (lambda x: cv2.resize(x, (nw, nh), interpolation=cv2.INTER_AREA), rgb),
        "resize cv2 INTER_LINEAR (aliases)": (lambda x: cv2.resize(x, (nw, nh), interpolation=cv2.INTER_LINEAR), rgb),
        "resize Pillow BILINEAR (antialiased)": (lambda p: p.resize((nw, nh), Image.BILINEAR), pil),
    }
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, (fn, items) in steps.items():
            samples[name].append(per_frame_us(fn, items))
    return {name: statistics.median(v) for name, v in samples.items()}


def fidelity(width: int, height: int, resize: int, size: int, quality: int, clips: int,
             model: Any = None, spec: Any = None) -> dict[str, Any]:
    import cv2
    import torch
    import torch.nn.functional as F

    from soccerkd.data.synth import SynthConfig, clip_rng, render_clip
    from soccerkd.spec import resize_crop_box
    from stream.inference.preprocess import resize_crop

    nh, nw, top, left = resize_crop_box(height, width, resize=resize, size=size)

    def exact(jpeg: bytes) -> np.ndarray:
        return resize_crop(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR_RGB), resize=resize, size=size)

    def draft(jpeg: bytes) -> np.ndarray:
        img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_REDUCED_COLOR_2)[..., ::-1].copy()
        y = F.interpolate(torch.from_numpy(img).permute(2, 0, 1)[None], size=(nh, nw), mode="bilinear",
                          antialias=True, align_corners=False)
        return y[0, :, top:top + size, left:left + size].permute(1, 2, 0).contiguous().numpy()

    def probs(frames: list[np.ndarray]) -> np.ndarray:
        x = torch.from_numpy(np.stack(frames)).permute(3, 0, 1, 2)[None].float() / 255.0
        x = (x - torch.tensor(spec.mean).view(1, 3, 1, 1, 1)) / torch.tensor(spec.std).view(1, 3, 1, 1, 1)
        with torch.inference_mode():
            return torch.softmax(model(x), 1)[0].numpy()

    cfg = SynthConfig(width=width, height=height, num_frames=16)
    labels = ("dribble", "kick", "run", "walk")
    d_draft, d_jpeg, agree, windows = [], [], 0, 0
    for i in range(clips):
        frames = render_clip(labels[i % 4], cfg, clip_rng(7, i % 4, i, cfg))   # BGR
        jpegs = [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes() for f in frames]
        ex, dr = [exact(j) for j in jpegs], [draft(j) for j in jpegs]
        raw = [resize_crop(np.ascontiguousarray(f[..., ::-1]), resize=resize, size=size) for f in frames]
        d_draft += [np.abs(a.astype(np.int16) - b).ravel() for a, b in zip(ex, dr)]
        d_jpeg += [np.abs(a.astype(np.int16) - c).ravel() for a, c in zip(ex, raw)]
        if model is not None:
            t = spec.clip.num_frames
            for s in range(0, len(frames) - t + 1, 4):
                agree += int(probs(ex[s:s + t]).argmax() == probs(dr[s:s + t]).argmax())
                windows += 1
    dd, dj = np.concatenate(d_draft), np.concatenate(d_jpeg)
    out = {"draft_vs_exact_mean": float(dd.mean()), "draft_vs_exact_p99": float(np.percentile(dd, 99)),
           "jpeg_vs_raw_mean": float(dj.mean()), "jpeg_vs_raw_p99": float(np.percentile(dj, 99)),
           "frames": len(d_draft)}
    if model is not None:
        out.update(top1_agree=agree, windows=windows)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--frame-size", default="320x240", help="WxH of the camera frames")
    p.add_argument("--size", type=int, default=112, help="model input (centre crop); resize = size·8/7")
    p.add_argument("--checkpoint", default=None, help="use this checkpoint's input spec and compare its predictions "
                                                      "(a path, or 'demo')")
    p.add_argument("--jpeg-quality", type=int, default=85, help="the ingester's JPEG quality")
    p.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (median)")
    p.add_argument("--clips", type=int, default=8, help="procedural clips for the fidelity part")
    p.add_argument("--out", default="runs/bench/preprocess.json")
    args = p.parse_args(argv)

    import torch

    import bench_pipeline as bp
    from stream.inference.images import encode_image

    torch.set_num_threads(1)
    w, h = (int(v) for v in args.frame_size.lower().split("x"))
    model = spec = None
    if args.checkpoint:
        from soccerkd.train.checkpoint import load_model

        from stream.inference.artifacts import resolve_checkpoint

        model, spec, _ = load_model(resolve_checkpoint(args.checkpoint), device="cpu")
        model.eval()
        size, resize = spec.size, spec.resize
    else:
        size, resize = args.size, int(args.size * 8 / 7)
    jpegs = [encode_image(f, quality=args.jpeg_quality) for f in bp.synthetic_frames(50, w, h)]
    t = timings(jpegs, resize, size, args.rounds)
    decode, aa = t["decode cv2.imdecode"], t["resize torch antialiased bilinear (training's)"]
    print(f"{w}x{h} JPEG q{args.jpeg_quality} ({np.mean([len(j) for j in jpegs]) / 1024:.1f} KB) -> shorter side "
          f"{resize}, crop {size}; one thread, median of {args.rounds} rounds")
    print(f"{'step':50s} {'µs/frame':>9s} {'× decode':>9s}")
    for name, us in t.items():
        print(f"{name:50s} {us:9.0f} {us / decode:9.2f}")
    ceiling = decode / (decode + aa)
    print(f"ceiling of pipeline/raw decode with training's filter: {ceiling:.2f} "
          f"(with INTER_LINEAR: {decode / (decode + t['resize cv2 INTER_LINEAR (aliases)']):.2f})")
    fid = fidelity(w, h, resize, size, args.jpeg_quality, args.clips, model, spec)
    print(f"1/2 draft vs exact input: mean {fid['draft_vs_exact_mean']:.2f}, p99 {fid['draft_vs_exact_p99']:.0f} "
          f"grey levels; JPEG q{args.jpeg_quality} itself: mean {fid['jpeg_vs_raw_mean']:.2f}, "
          f"p99 {fid['jpeg_vs_raw_p99']:.0f} ({fid['frames']} frames)")
    if model is not None:
        print(f"top-1 equal on {fid['top1_agree']}/{fid['windows']} windows ({args.checkpoint})")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"frame_size": [w, h], "resize": resize, "size": size, "jpeg_quality": args.jpeg_quality,
                               "us_per_frame": t, "ceiling_vs_raw_decode": ceiling, "draft_fidelity": fid,
                               "checkpoint": args.checkpoint, "torch_threads": 1}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
