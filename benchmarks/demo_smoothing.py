"""Event-smoothing values for a student, chosen on **validation matches** (never the demo's own match).

Renders ``--matches`` procedural matches of the student's generator version with random timelines
(``soccerkd.data.synth.random_timeline``; seeds ``[--seed + i, 5555]``, a stream neither the
demo's match, ``render_match(seed=7)``, nor the training matches, ``[seed, 7777, m]``, use),
runs each once through the service's own pipeline (``stream.app.predict.run_video``: the same
windows, preprocessing and model as ``soccerkd serve``) recording every window's probabilities,
then replays :class:`stream.core.smoothing.Smoother` over a grid of ``on_threshold`` ×
``off_threshold`` × ``min_windows`` and scores each against the ground truth (segment F1 at IoU ≥ 0.5,
frame accuracy), as the demo scores. Prints the table, best (mean F1, then mean frame accuracy)
first, and writes JSON.

    python benchmarks/demo_smoothing.py --checkpoint stream/assets/demo_student.pt --out runs/demo_v3/smoothing.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


class RecordingPredictor:
    """Wraps a predictor and keeps ``(WindowRef, probs)`` of every window it classifies."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.records: list[tuple[Any, list[float]]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def predict(self, windows):
        from stream.core.smoothing import WindowRef

        probs = self.inner.predict(windows)
        for w, p in zip(windows, probs):
            ts = w.capture_ts_ns
            self.records.append((WindowRef(w.start_seq, w.end_seq, ts[0], ts[-1], max(ts)), [float(v) for v in p]))
        return probs


def replay(records, class_names, on: float, off: float, min_windows: int) -> list:
    from stream.core.evaluation import Segment
    from stream.core.smoothing import Smoother, SmoothingConfig

    sm = Smoother(class_names, SmoothingConfig(on_threshold=on, off_threshold=off, min_windows=min_windows))
    segs = []
    for ref, probs in sorted(records, key=lambda r: r[0].start_seq):
        segs += sm.push(ref, probs)
    segs += sm.close()
    return [Segment(s.label if isinstance(s.label, str) else class_names[s.label], s.first.start_seq,
                    s.last.end_seq + 1) for s in segs]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default="demo")
    ap.add_argument("--config", default="configs/stream/demo.yaml", help="stream config (windows, model)")
    ap.add_argument("--matches", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--segments", type=int, default=10)
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--on", default="0.5,0.6,0.7")
    ap.add_argument("--off", default="0.25,0.4")
    ap.add_argument("--min-windows", default="2,3,4,6")
    ap.add_argument("--work", type=Path, default=Path("runs/demo_smoothing"))
    ap.add_argument("--out", type=Path, default=Path("runs/demo_smoothing/smoothing.json"))
    args = ap.parse_args(argv)

    import numpy as np

    from soccerkd.config import load_config
    from soccerkd.data.synth import parse_size, random_timeline, render_match
    from soccerkd.train.checkpoint import load_checkpoint, synth_version
    from stream.app.predict import run_video
    from stream.config import StreamConfig
    from stream.core.evaluation import Segment, frame_accuracy, match_segments
    from stream.inference.artifacts import find_file, resolve_checkpoint
    from stream.inference.predictors import TorchPredictor

    ckpt = resolve_checkpoint(args.checkpoint)
    version = synth_version(load_checkpoint(ckpt)) or 2
    cfg = load_config(StreamConfig, find_file(args.config) or args.config, [])
    m = cfg.model
    predictor = RecordingPredictor(TorchPredictor.from_checkpoint(ckpt, device="cpu", amp=m.amp, cpu_threads=m.cpu_threads,
                                                                  decode=m.decode, decode_threads=cfg.decode_threads,
                                                                  jpeg_draft=m.jpeg_draft))
    names = list(predictor.input_spec.class_names)
    matches = []
    for i in range(args.matches):
        seed = args.seed + i
        timeline = random_timeline(np.random.default_rng([seed, 5555]), args.segments)
        video = args.work / f"val_v{version}_{seed}.mp4"
        gt = render_match(video, timeline, size=parse_size(args.size), seed=seed, version=version)
        predictor.records = []
        run_video(video, predictor, cfg.pipeline_config(), camera_id=video.stem, progress=False)
        truth = [Segment(s["label"], s["start_frame"], s["end_frame"]) for s in gt["segments"]]
        matches.append((truth, gt["num_frames"], list(predictor.records)))
        print(f"match {seed}: {gt['num_frames']} frames, {len(predictor.records)} windows", file=sys.stderr)
    predictor.close()
    rows = []
    grid = itertools.product([float(v) for v in args.on.split(",")], [float(v) for v in args.off.split(",")],
                             [int(v) for v in args.min_windows.split(",")])
    for on, off, mw in grid:
        if off > on:
            continue
        f1s, accs, labels = [], [], set()
        for truth, n, records in matches:
            pred = replay(records, names, on, off, mw)
            f1s.append(match_segments(pred, truth, iou=0.5).f1)
            accs.append(frame_accuracy(pred, truth, n))
            labels |= {p.label for p in pred}
        rows.append({"on_threshold": on, "off_threshold": off, "min_windows": mw, "f1": statistics.fmean(f1s),
                     "frame_accuracy": statistics.fmean(accs), "f1_per_match": f1s, "frame_accuracy_per_match": accs,
                     "labels_predicted": sorted(labels)})
    rows.sort(key=lambda r: (-r["f1"], -r["frame_accuracy"]))
    print(f"{args.matches} validation matches (v{version}, seeds {args.seed}..{args.seed + args.matches - 1}), "
          f"checkpoint {ckpt}")
    print("| on | off | min windows | mean F1 (IoU ≥ 0.5) | mean frame acc | F1 per match |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['on_threshold']:g} | {r['off_threshold']:g} | {r['min_windows']} | {r['f1']:.2f} | "
              f"{r['frame_accuracy']:.2f} | {', '.join(f'{v:.2f}' for v in r['f1_per_match'])} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"checkpoint": str(ckpt), "version": version, "matches": args.matches,
                                    "seed": args.seed, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
