"""Event-smoothing values for a student, chosen on **validation matches** (never the demo's own match).

Renders ``--matches`` procedural matches of the student's generator version with random timelines
(``soccerkd.data.synth.random_timeline``; seeds ``[--seed + i, 5555]``, a stream neither the
demo's match, ``render_match(seed=7)``, nor the training matches, ``[seed, 7777, m]``, use),
runs each once through the service's own pipeline (``stream.app.predict.run_video``: the same
windows, preprocessing and model as ``soccerkd serve``) recording every window's probabilities,
then replays :class:`stream.core.smoothing.Smoother` over a grid of ``average_windows`` ×
``on_threshold`` × ``off_threshold`` × ``min_windows`` and scores each against the ground truth
(segment F1 at IoU ≥ 0.5, frame accuracy), as the demo scores. Prints the table, best (mean F1,
then mean frame accuracy) first, and writes JSON. Matches already rendered in ``--work`` (same
timeline, size, seed and version in their ground-truth JSON) are reused, so scoring another
student takes seconds.

    python benchmarks/demo_smoothing.py --checkpoint demo --matches 8 --average 1,3,5,7,9 \
        --out runs/demo_v3/smoothing.json
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


def replay(records, class_names, on: float, off: float, min_windows: int, average: int = 1) -> list:
    from stream.core.evaluation import Segment
    from stream.core.smoothing import Smoother, SmoothingConfig

    sm = Smoother(class_names, SmoothingConfig(on_threshold=on, off_threshold=off, min_windows=min_windows,
                                               average_windows=average))
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
    ap.add_argument("--average", default="1",
                    help="average_windows values: each window decided on the mean of it and the next N-1")
    ap.add_argument("--dump-records", type=Path, default=None, metavar="FILE",
                    help="also pickle every window's (WindowRef, probabilities) and the ground truth to FILE")
    ap.add_argument("--demo-match", action="store_true",
                    help="also score the demo's own match (soccerkd demo's timeline, seed 7) beside each row: "
                         "reported, never used for the ranking")
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
    def record(video: Path, gt: dict) -> tuple:
        predictor.records = []
        run_video(video, predictor, cfg.pipeline_config(), camera_id=video.stem, progress=False)
        truth = [Segment(s["label"], s["start_frame"], s["end_frame"]) for s in gt["segments"]]
        print(f"{video.name}: {gt['num_frames']} frames, {len(predictor.records)} windows", file=sys.stderr)
        return truth, gt["num_frames"], list(predictor.records)

    def rendered(video: Path, timeline: list, size: tuple[int, int], seed: int) -> dict:
        """The match's ground truth, rendering it unless ``--work`` already holds the same match (its
        ground truth names the same timeline, size, seed and version)."""
        gt_path = video.with_suffix(".json")
        if video.is_file() and gt_path.is_file():
            gt = json.loads(gt_path.read_text())
            same = (gt.get("version") == version and gt.get("seed") == seed
                    and [[s["label"], s["end_frame"] - s["start_frame"]] for s in gt["segments"]]
                    == [[label, n] for label, n in timeline] and [gt.get("width"), gt.get("height")] == list(size))
            if same:
                return gt
        return render_match(video, timeline, size=size, seed=seed, version=version)

    matches = []
    for i in range(args.matches):
        seed = args.seed + i
        timeline = random_timeline(np.random.default_rng([seed, 5555]), args.segments)
        video = args.work / f"val_v{version}_{seed}.mp4"
        matches.append(record(video, rendered(video, list(timeline), parse_size(args.size), seed)))
    demo = None
    if args.demo_match:
        from stream.dev.demo import DEFAULT_TIMELINE

        video = args.work / f"demo_v{version}_7.mp4"
        demo = record(video, rendered(video, list(DEFAULT_TIMELINE), (320, 240), 7))
    predictor.close()
    if args.dump_records is not None:   # every window's probabilities, to replay other smoothers offline
        import pickle

        args.dump_records.parent.mkdir(parents=True, exist_ok=True)
        args.dump_records.write_bytes(pickle.dumps({"names": names, "matches": matches, "demo": demo}))

    def score(match, on, off, mw, avg):
        truth, n, records = match
        pred = replay(records, names, on, off, mw, avg)
        return match_segments(pred, truth, iou=0.5).f1, frame_accuracy(pred, truth, n), {p.label for p in pred}

    rows = []
    grid = itertools.product([int(v) for v in args.average.split(",")], [float(v) for v in args.on.split(",")],
                             [float(v) for v in args.off.split(",")], [int(v) for v in args.min_windows.split(",")])
    for avg, on, off, mw in grid:
        if off > on:
            continue
        f1s, accs, labels = [], [], set()
        for match in matches:
            f1, acc, got = score(match, on, off, mw, avg)
            f1s.append(f1)
            accs.append(acc)
            labels |= got
        row = {"average_windows": avg, "on_threshold": on, "off_threshold": off, "min_windows": mw,
               "f1": statistics.fmean(f1s), "frame_accuracy": statistics.fmean(accs), "f1_per_match": f1s,
               "frame_accuracy_per_match": accs, "labels_predicted": sorted(labels)}
        if demo is not None:
            f1, acc, got = score(demo, on, off, mw, avg)
            row["demo_match"] = {"f1": f1, "frame_accuracy": acc, "labels_predicted": sorted(got)}
        rows.append(row)
    rows.sort(key=lambda r: (-r["f1"], -r["frame_accuracy"]))
    print(f"{args.matches} validation matches (v{version}, seeds {args.seed}..{args.seed + args.matches - 1}), "
          f"checkpoint {ckpt}" + ("; the demo's match beside them, not used for the ranking" if demo else ""))
    head = "| average | on | off | min windows | mean F1 (IoU ≥ 0.5) | mean frame acc | F1 per match |"
    if demo is not None:
        head += " demo match F1 | demo frame acc | demo classes |"
    print(head + "\n" + "|---" * (head.count("|") - 1) + "|")
    for r in rows:
        line = (f"| {r['average_windows']} | {r['on_threshold']:g} | {r['off_threshold']:g} | {r['min_windows']} | "
                f"{r['f1']:.2f} | {r['frame_accuracy']:.2f} | {', '.join(f'{v:.2f}' for v in r['f1_per_match'])} |")
        if demo is not None:
            d = r["demo_match"]
            line += f" {d['f1']:.2f} | {d['frame_accuracy']:.2f} | {len(d['labels_predicted'])} |"
        print(line)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"checkpoint": str(ckpt), "version": version, "matches": args.matches,
                                    "seed": args.seed, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
