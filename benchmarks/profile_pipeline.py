"""cProfile of the pipeline's main thread with a zero-cost model (the real input path, no network).

    python benchmarks/profile_pipeline.py --frame-size 320x240 --cameras 8 --frames 200 --top 15

Prints frames/s and the top of the profile by own time. Decoding runs in the decode threads,
which cProfile does not see: ``--inline`` decodes on the main thread instead, to profile it.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--frame-size", default="320x240")
    p.add_argument("--cameras", type=int, default=8)
    p.add_argument("--frames", type=int, default=200, help="frames per camera")
    p.add_argument("--poll", type=int, default=32, help="messages per offer (a poll)")
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--inline", action="store_true", help="decode on the main thread (to see it in the profile)")
    args = p.parse_args(argv)

    import torch

    import bench_pipeline as bp
    from soccerkd.spec import ClipSpec, InputSpec
    from stream.inference.predictors import TorchPredictor
    from stream.inference.images import encode_image
    from stream.core.ledger import SourceRef
    from stream.core.pipeline import Pipeline, PipelineConfig
    from stream.core.windowing import WindowConfig

    torch.set_num_threads(1)
    w, h = (int(v) for v in args.frame_size.split("x"))
    spec = InputSpec(clip=ClipSpec(num_frames=8, frame_stride=1), size=112, resize=128)
    pred = TorchPredictor(bp.ZeroCostModel(spec.num_classes), spec, model_name="zero", device="cpu")
    if args.inline:   # run each decode batch on the calling thread
        decoder = pred.decoder
        pred.decoder.start = lambda jobs, store, slots: (lambda out: (lambda: out))(
            decoder._run(jobs, store.tensor, slots, 0, len(jobs)))
    jpegs = [encode_image(f, quality=85) for f in bp.synthetic_frames(50, w, h)]
    msgs = bp.messages(jpegs, (w, h), args.cameras, args.frames, 5, 25.0, time.time_ns())
    cfg = PipelineConfig(window=WindowConfig(window_stride=4, reorder_tolerance=0, max_fill=0), max_batch=32,
                         max_wait_ms=20)

    def run(items: list) -> float:
        pipe = Pipeline(pred, config=cfg)
        t0 = time.perf_counter()
        for lo in range(0, len(items), args.poll):
            pipe.offer_messages([(v, SourceRef("frames", 0, lo + i)) for i, (_, v) in enumerate(items[lo:lo + args.poll])])
            while pipe.pending >= cfg.max_batch:
                pipe.step(force=True)
        pipe.drain()
        seconds = time.perf_counter() - t0
        pipe.drop_partition(("frames", 0))
        return seconds

    run(msgs[:40])
    prof = cProfile.Profile()
    prof.enable()
    seconds = run(msgs)
    prof.disable()
    print(f"{len(msgs) * 5 / seconds:.0f} frames/s ({len(msgs) * 5} frames in {seconds:.2f} s)")
    pstats.Stats(prof).sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
