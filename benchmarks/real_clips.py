"""What a checkpoint predicts on real footage: a sanity reading, not a tuned target (issue 25).

For each video, ``--clips`` uniform clips (the checkpoint's own clip spec, eval transform: resize and
centre crop) are classified; prints the mean softmax over the clips and how many clips each class
won, and writes the same as JSON. Real clips used in issue 25: ``vtest.avi`` (pedestrians walking,
Debian ``opencv-doc``) and UCF101's ``v_SoccerJuggling_g23_c01.avi``/``g24_c01.avi`` (the Debian
source of ``pytorch-vision``, ``test/assets/videos/``). None has our four labels exactly: walking
people should read as walk; juggling is closest to dribble (ball at the feet).

    python benchmarks/real_clips.py --checkpoint demo --out runs/real/shipped.json /tmp/real/*.avi
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def readout(checkpoint: str, videos: list[Path], clips: int) -> list[dict]:
    from soccerkd.data.clips import uniform_clips
    from soccerkd.data.decode import probe, read_frames
    from soccerkd.data.transforms import build_transform
    from soccerkd.train.checkpoint import load_model
    from stream.inference.artifacts import resolve_checkpoint

    model, spec, _ = load_model(resolve_checkpoint(checkpoint))
    transform = build_transform(spec, train=False)
    rows = []
    for path in videos:
        info = probe(path)
        batch = torch.stack([transform(read_frames(path, idx)) for idx in
                             uniform_clips(info.num_frames, spec.clip, clips, info.fps)])
        with torch.no_grad():
            p = model(batch).softmax(1)
        wins = torch.bincount(p.argmax(1), minlength=len(spec.class_names)).tolist()
        rows.append({"video": path.name, "frames": info.num_frames, "clips": clips,
                     "mean_softmax": dict(zip(spec.class_names, [round(v, 3) for v in p.mean(0).tolist()])),
                     "clips_won": dict(zip(spec.class_names, wins))})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("videos", nargs="+", type=Path)
    ap.add_argument("--checkpoint", default="demo", help="a best.pt, or 'demo' (the shipped student)")
    ap.add_argument("--clips", type=int, default=16, help="uniform clips per video (default 16)")
    ap.add_argument("--out", type=Path, help="write the rows as JSON here too")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = readout(args.checkpoint, args.videos, args.clips)
    names = list(rows[0]["mean_softmax"])
    print(f"{'video':<28}" + "".join(f"{n:>9}" for n in names) + "   clips won")
    for r in rows:
        print(f"{r['video']:<28}" + "".join(f"{r['mean_softmax'][n]:>9.3f}" for n in names)
              + "   " + " ".join(f"{n}={r['clips_won'][n]}" for n in names))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"checkpoint": args.checkpoint, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
