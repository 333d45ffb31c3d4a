"""File ingest speed against a plain decode-and-encode loop, side by side in one run.

    python benchmarks/bench_ingest.py [--source VIDEO] [--rounds 3] [--encode-threads 1 2] [--kafka]

The baseline is the least an ingester must do per frame on one thread: ``VideoCapture.read``,
BGR->RGB, downscale to ``--max-side``, ``cv2.imencode``. The ingester runs ``stream.app.ingest``'s
real path (source, batching, encode threads, envelope) into a null producer, or into a real
local broker with ``--kafka``. Rounds alternate, so a noisy machine hits both alike; the table
shows the median ratio ingest/baseline. JSON goes to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_video(path: Path, frames: int, width: int, height: int) -> Path:
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (width, height))
    for i in range(frames):
        out.write(np.roll(base, 3 * i, axis=1))   # a panning textured scene: JPEG work like a broadcast
    out.release()
    return path


def baseline(source: str, max_side: int, quality: int) -> float:
    import cv2

    from stream.app.ingest import _shrink

    cap = cv2.VideoCapture(source)
    n, t0 = 0, time.perf_counter()
    while True:
        ok, img = cap.read()
        if not ok:
            break
        rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        cv2.imencode(".jpg", cv2.cvtColor(_shrink(rgb, max_side), cv2.COLOR_RGB2BGR),
                     [cv2.IMWRITE_JPEG_QUALITY, quality])
        n += 1
    cap.release()
    return n / (time.perf_counter() - t0)


class NullProducer:
    class _Done:
        is_done = True

        def failed(self) -> bool:
            return False

    def __init__(self) -> None:
        self.bytes = 0

    def send(self, topic, key=None, value=None):   # noqa: ANN001 (KafkaProducer's signature)
        self.bytes += len(value)
        return self._Done()

    def flush(self, timeout=None) -> None:   # noqa: ANN001
        pass


def ingest_fps(source: str, max_side: int, quality: int, threads: int, producer, topic: str) -> float:
    from stream.app.ingest import IngestOptions, IngestStats, run_camera

    opts = IngestOptions(source=source, camera_id="bench", topic=topic, pacing="fast", max_side=max_side,
                         jpeg_quality=quality, frames_per_batch=8, encode_threads=threads)
    stats = IngestStats()
    t0 = time.perf_counter()
    run_camera(opts, producer, stats, stop=threading.Event())
    return stats.frames / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default=None, help="video file (default: a generated 640x360 MJPG clip)")
    p.add_argument("--frames", type=int, default=300, help="frames of the generated clip")
    p.add_argument("--max-side", type=int, default=640)
    p.add_argument("--quality", type=int, default=85)
    p.add_argument("--encode-threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--kafka", action="store_true", help="send to a real local broker instead of a null producer")
    p.add_argument("--out", type=Path, default=Path("bench_ingest.json"))
    args = p.parse_args(argv)
    import cv2

    cv2.setNumThreads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    source = args.source or str(make_video(tmp / "clip.avi", args.frames, 640, 360))
    broker = producer = None
    topic = "frames"
    if args.kafka:
        from stream.dev.broker import LocalBroker
        from stream.kafka.config import KafkaConfig
        from stream.kafka.connection import make_producer

        broker = LocalBroker().start()
        broker.create_topic(topic, partitions=1, config={"max.message.bytes": str(16 * 1024 * 1024)})
        producer = make_producer(KafkaConfig(bootstrap=broker.bootstrap), client_id="bench-ingest")
    try:
        rows = {t: [] for t in args.encode_threads}
        base = []
        for r in range(args.rounds):
            base.append(baseline(source, args.max_side, args.quality))
            for t in args.encode_threads:
                fps = ingest_fps(source, args.max_side, args.quality, t, producer or NullProducer(), topic)
                rows[t].append((fps, fps / base[-1]))
            print(f"round {r + 1}/{args.rounds}: baseline {base[-1]:.0f} frames/s, "
                  + ", ".join(f"{t} thread(s) {rows[t][-1][0]:.0f}" for t in args.encode_threads), file=sys.stderr)
    finally:
        if producer is not None:
            producer.close()
        if broker is not None:
            broker.stop()
    result = {"source": args.source or "generated 640x360 MJPG", "max_side": args.max_side, "kafka": args.kafka,
              "baseline_frames_per_s": statistics.median(base),
              "ingest": {str(t): {"frames_per_s": statistics.median(f for f, _ in v),
                                  "ratio_to_baseline": statistics.median(x for _, x in v)} for t, v in rows.items()}}
    print(f"{'path':<28}{'frames/s':>10}{'ratio':>8}")
    print(f"{'decode+encode loop, 1 thr':<28}{result['baseline_frames_per_s']:>10.0f}{1.0:>8.2f}")
    for t, r in result["ingest"].items():
        print(f"{'ingest, ' + t + ' encode thread(s)':<28}{r['frames_per_s']:>10.0f}{r['ratio_to_baseline']:>8.2f}")
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
