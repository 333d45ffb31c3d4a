"""Structure-aware fuzzing of the frames-message decoder and the pipeline's intake.

    python benchmarks/fuzz_envelope.py --cases 100000 [--seed 0] [--out fuzz.json]

Each case starts from a valid envelope (real JPEG frames) or from the bad-input corpus
(``stream.dev.badinput.bad_input_corpus``). 40% keep the envelope valid and break one JPEG frame
(bytes overwritten, cut or inserted, its frame-header size rewritten); the rest apply 1-4
mutations that know the envelope layout: a header
field set to a boundary value (0, 1, 2**31, 2**64-1, NaN, inf, 1e300...), a length or count made
to disagree with the payload, a JPEG marker or size rewritten, bytes flipped, inserted, cut or
spliced from another message. The message then goes to ``decode_frame_batch`` and to
``Pipeline.begin_offer``/``finish_offer`` with the real CPU JPEG decoder. An outcome is either
accepted or a dead letter (an ``EnvelopeError``); anything else is an uncaught exception,
printed with its case. It reports the uncaught count, the outcome counts and the peak RSS, and
writes JSON. ``make test`` runs 2,000 cases (tests/unit/stream/test_stream_fuzz.py).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import struct
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BOUNDARY_INTS = (0, 1, 2, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 63 - 1, 2 ** 64 - 1)
BOUNDARY_FLOATS = (0.0, -0.0, -1.0, 1e-300, 1e300, float("nan"), float("inf"), float("-inf"), 25.0, 1000.0, 1000.1)


def zero_model() -> Any:
    """Constant logits, no arithmetic: the fuzzer exercises intake, not the network."""
    import torch

    class ZeroModel(torch.nn.Module):
        def forward(self, x: Any) -> Any:
            return torch.zeros(x.shape[0], 4)

    return ZeroModel()


def seeds() -> list[bytes]:
    from stream.core.wire import encode_frame_batch
    from stream.dev.badinput import bad_input_corpus
    from stream.dev.testing import solid_batch

    good = [encode_frame_batch(solid_batch(f"cam-{i}", 8 * i, [(30 * i % 255, 90, 200)] * (1 + i % 8),
                                           width=32 + 8 * i, height=24 + 4 * i)) for i in range(6)]
    return good + [v for v, _key, _reason in bad_input_corpus().values() if v]


def mutate(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    b = bytearray(data)
    cam_len = struct.unpack_from(">H", b, 6)[0] if len(b) >= 8 else 0
    fixed = 8 + cam_len   # first_seq Q, width I, height I, fps d, count I
    op = rng.randrange(9)
    if op == 0 and len(b) >= fixed + 28:      # a header integer at a boundary
        off, fmt = rng.choice([(fixed, ">Q"), (fixed + 8, ">I"), (fixed + 12, ">I"), (fixed + 24, ">I")])
        limit = 2 ** (8 * struct.calcsize(fmt))
        struct.pack_into(fmt, b, off, rng.choice(BOUNDARY_INTS) % limit)
    elif op == 1 and len(b) >= fixed + 24:    # the fps at a boundary
        struct.pack_into(">d", b, fixed + 16, rng.choice(BOUNDARY_FLOATS))
    elif op == 2 and len(b) >= 8:             # prefix fields: version, encoding, camera id length
        off, fmt = rng.choice([(4, ">B"), (5, ">B"), (6, ">H")])
        struct.pack_into(fmt, b, off, rng.choice((0, 1, 2, 127, 255, 65535)) % 2 ** (8 * struct.calcsize(fmt)))
    elif op == 3 and b:                       # flip a few bits
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif op == 4 and b:                       # cut
        del b[rng.randrange(len(b)):]
    elif op == 5:                             # insert random bytes
        pos = rng.randrange(len(b) + 1)
        b[pos:pos] = rng.randbytes(rng.randint(1, 64))
    elif op == 6:                             # splice with another message
        other = rng.choice(pool)
        b = b[:rng.randrange(len(b) + 1)] + other[rng.randrange(len(other) + 1):]
    elif op == 7 and b:                       # rewrite a JPEG size (SOF) or marker
        sof = bytes(b).find(b"\xff\xc0")
        if sof >= 0 and sof + 9 <= len(b):
            struct.pack_into(">HH", b, sof + 5, rng.choice(BOUNDARY_INTS) % 65536, rng.choice(BOUNDARY_INTS) % 65536)
        else:
            b[rng.randrange(len(b))] = 0xFF
    elif op == 8 and len(b) >= fixed + 28:    # a timestamp at a boundary
        pos = fixed + 28 + 8 * rng.randrange(max(1, min(8, (len(b) - fixed - 28) // 8)))
        if pos + 8 <= len(b):
            struct.pack_into(">q", b, pos, rng.choice((-1, 0, 2 ** 62, 2 ** 62 + 1, 2 ** 63 - 1, -(2 ** 63))))
    return bytes(b)


def mutate_frames(data: bytes, rng: random.Random) -> bytes:
    """Keep the envelope valid and break its JPEG frames instead, so the decoder is reached."""
    import dataclasses

    from stream.core.wire import EnvelopeError, decode_frame_batch, encode_frame_batch

    try:
        batch = decode_frame_batch(data)
    except EnvelopeError:
        return data
    frames = list(batch.frames)
    i = rng.randrange(len(frames))
    f = bytearray(frames[i])
    op = rng.randrange(4)
    if op == 0:
        for _ in range(rng.randint(1, 16)):
            f[rng.randrange(len(f))] = rng.randrange(256)
    elif op == 1:
        del f[rng.randrange(2, len(f)):]
    elif op == 2:
        sof = bytes(f).find(b"\xff\xc0")
        if sof >= 0:
            struct.pack_into(">HH", f, sof + 5, rng.choice(BOUNDARY_INTS) % 65536, rng.choice(BOUNDARY_INTS) % 65536)
    else:
        pos = rng.randrange(len(f))
        f[pos:pos] = rng.randbytes(rng.randint(1, 32))
    frames[i] = bytes(f) or b"\x00"
    return encode_frame_batch(dataclasses.replace(batch, frames=tuple(frames)))


def run(cases: int, seed: int, *, progress: bool = True) -> dict[str, Any]:
    from soccerkd.spec import ClipSpec, InputSpec
    from stream.inference.predictors import TorchPredictor
    from stream.core.wire import EnvelopeError, decode_frame_batch
    from stream.core.ledger import SourceRef
    from stream.core.pipeline import Pipeline, PipelineConfig
    from stream.core.windowing import WindowConfig

    spec = InputSpec(clip=ClipSpec(num_frames=4, frame_stride=1), size=16, resize=16,
                     class_names=("dribble", "kick", "run", "walk"))
    predictor = TorchPredictor(zero_model(), spec, model_name="zero", checkpoint_sha256="0" * 64, device="cpu",
                               amp="none", decode="cpu")
    pipe = Pipeline(predictor, config=PipelineConfig(window=WindowConfig(window_stride=4, reorder_tolerance=0,
                                                                         max_fill=0), max_batch=64))
    rng = random.Random(seed)
    pool = seeds()
    outcomes: Counter[str] = Counter()
    uncaught: list[dict[str, Any]] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cases, unit="case", desc="fuzz", file=sys.stderr)
    t0 = time.perf_counter()
    for i in range(cases):
        data = rng.choice(pool)
        if rng.random() < 0.4:
            data = mutate_frames(data, rng)
        else:
            for _ in range(rng.randint(1, 4)):
                data = mutate(data, rng, pool)
        key = data[8:8 + struct.unpack_from(">H", data, 6)[0]] if len(data) >= 8 and rng.random() < 0.9 else b"x"
        try:
            try:
                decode_frame_batch(data)
            except EnvelopeError:
                pass
            offer = pipe.begin_offer([(data, SourceRef("frames", 0, i, key=key))])
            rejected = pipe.finish_offer(offer)
            outcomes[rejected[0].error.reason if rejected else "accepted"] += 1
            if i % 256 == 255:
                pipe.drain()
        except Exception as exc:   # the fuzzer's finding
            outcomes["UNCAUGHT"] += 1
            uncaught.append({"case": i, "exception": f"{type(exc).__name__}: {exc}"[:500],
                             "message_hex": data[:256].hex(), "trace": traceback.format_exc()[-2000:]})
            print(f"case {i}: uncaught {type(exc).__name__}: {exc}", file=sys.stderr)
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - t0
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"cases": cases, "seed": seed, "seconds": round(seconds, 1), "cases_per_s": round(cases / seconds, 1),
            "uncaught": len(uncaught), "outcomes": dict(outcomes.most_common()), "peak_rss_mb": round(peak_rss_mb, 1),
            "uncaught_cases": uncaught[:20], "finite": all(math.isfinite(v) for v in (seconds, peak_rss_mb))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("fuzz_envelope.json"))
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    result = run(args.cases, args.seed, progress=not args.no_progress)
    print(f"{result['cases']} cases in {result['seconds']} s ({result['cases_per_s']}/s): "
          f"{result['uncaught']} uncaught, peak RSS {result['peak_rss_mb']} MB")
    for reason, n in result["outcomes"].items():
        print(f"  {reason:<20}{n:>8}")
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 1 if result["uncaught"] else 0


if __name__ == "__main__":
    sys.exit(main())
