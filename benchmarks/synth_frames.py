"""A picture of procedural clips: one row per class, one middle frame per clip (issue 25, generator v4).

Each tile is the middle frame of clip ``k`` of that class as ``soccerkd data synth --seed SEED``
renders it (the same ``clip_rng``); the last column pair shows the first and last frame of the
row's first clip, so the camera's zoom drift is visible too.

    python benchmarks/synth_frames.py --version 4 --out docs/img/synth_v4_frames.png
"""

from __future__ import annotations

import argparse
from pathlib import Path


def grid(version: int, seed: int, per_class: int, size: tuple[int, int], frames: int):
    import cv2
    import numpy as np

    from soccerkd.data.synth import SynthConfig, clip_rng, render_clip
    from soccerkd.spec import SOCCERDB1_CLASSES

    cfg = SynthConfig(width=size[0], height=size[1], num_frames=frames, version=version)
    rows = []
    for ci, label in enumerate(SOCCERDB1_CLASSES):
        tiles, first = [], None
        for k in range(per_class):
            clip = render_clip(label, cfg, clip_rng(seed, ci, k, cfg))
            first = first or clip
            tiles.append(clip[frames // 2])
        tiles += [first[0], first[-1]]
        margin = np.full((size[1], 64, 3), 255, np.uint8)
        cv2.putText(margin, label, (4, size[1] // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        sep = np.full((size[1], 4, 3), 255, np.uint8)
        parts = [margin]
        for j, t in enumerate(tiles):
            parts += [t, sep if j != per_class - 1 else np.full((size[1], 12, 3), 255, np.uint8)]
        rows.append(np.concatenate(parts[:-1], 1))
        rows.append(np.full((4, rows[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(rows[:-1], 0)


def main() -> None:
    import cv2

    from soccerkd.data.synth import parse_size

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--version", type=int, default=4, help="generator version (default 4)")
    ap.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    ap.add_argument("--per-class", type=int, default=4, help="clips per class row (default 4)")
    ap.add_argument("--size", default="160x120", help="frame size WIDTHxHEIGHT (default 160x120)")
    ap.add_argument("--frames", type=int, default=24, help="frames per clip (default 24)")
    ap.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = ap.parse_args()
    img = grid(args.version, args.seed, args.per_class, parse_size(args.size), args.frames)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), img, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {args.out} ({img.shape[1]}x{img.shape[0]})")


if __name__ == "__main__":
    main()
