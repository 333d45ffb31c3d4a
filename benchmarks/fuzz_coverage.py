"""Coverage-guided fuzzing (atheris, libFuzzer) of the parsers every frames message and event
meets before anything is decoded: the envelope (``decode_frame_batch``), the limits
(``parse_message``: frame count, pixels, decode work), the JPEG header walks (``jpeg_size``,
``jpeg_scans``, ``jpeg_header_error``), the dead-letter headers (``dlq_headers``) and the event
reader (``ActionEvent.from_json``).

    pip install '.[fuzz]'    # atheris
    python benchmarks/fuzz_coverage.py --runs 200000 [--out fuzz_coverage.json] [--corpus DIR]

Seeds: valid envelopes and the whole bad-input corpus (``stream.dev.badinput``). Every input runs
through each target; a target may only return or raise the error it documents (``EnvelopeError``
for messages and JPEG headers, ``ValueError`` for events). Anything else is a finding: printed
with its input (hex) and saved under ``findings/``. The JSON holds the executions, the coverage
libFuzzer reports (``cov``: edges, ``ft``: features) and the findings.

Coverage-guided, it finds what the structure-aware ``fuzz_envelope.py`` cannot reach by
chance: marker sequences deep in a JPEG header walk, JSON shapes an event reader trips on.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def targets():
    from types import SimpleNamespace

    from stream.core.ledger import SourceRef
    from stream.core.limits import LimitsConfig, parse_message
    from stream.core.wire import ActionEvent, EnvelopeError, decode_frame_batch, jpeg_header_error, jpeg_scans, jpeg_size
    from stream.kafka.deadletters import dlq_headers

    limits = LimitsConfig()
    ref = SourceRef("frames", 0, 0)

    def envelope(data: bytes) -> None:
        try:
            decode_frame_batch(data)
        except EnvelopeError:
            pass
        try:
            parse_message(data, data[:8], limits, window_stride=1 + data[0] % 8 if data else 1)
        except EnvelopeError:
            pass

    def jpeg(data: bytes) -> None:
        try:
            jpeg_size(data)
        except EnvelopeError:
            pass
        jpeg_scans(data, limit=32)
        jpeg_header_error(data, 64, 48)

    def event(data: bytes) -> None:
        try:
            ActionEvent.from_json(data)
        except (ValueError, UnicodeDecodeError):   # json.JSONDecodeError is a ValueError
            pass

    def dead_letter(data: bytes) -> None:
        half = len(data) // 2
        headers = [(data[:half].decode("utf-8", "replace"), data[half:] or None)]
        dlq_headers(ref, EnvelopeError(data[:40].decode("latin-1")), record=SimpleNamespace(
            headers=headers, timestamp=int.from_bytes(data[:8] or b"0", "big"), key=data[:4], value=data))

    return {"envelope": envelope, "jpeg": jpeg, "event": event, "dead_letter": dead_letter}


def seeds() -> list[bytes]:
    from stream.core.wire import encode_frame_batch
    from stream.dev.badinput import bad_input_corpus, progressive
    from stream.dev.testing import jpeg, solid_batch

    good = [encode_frame_batch(solid_batch(f"cam-{i}", 8 * i, [(30 * i, 90, 200)] * (1 + i), width=16, height=12))
            for i in range(3)]
    event = json.dumps({"event_id": "e" * 32, "camera_id": "cam", "label": "kick", "confidence": 0.9,
                        "start_seq": 0, "end_seq": 7, "start_capture_ts_ns": 1, "end_capture_ts_ns": 2,
                        "model_name": "n", "checkpoint_sha256": "h", "emitted_at": 3.0}).encode()
    small = [v for v, _, _ in bad_input_corpus().values() if v and len(v) < 64 * 1024]
    return good + small + [jpeg(), progressive(), event]


def fuzz_one(data: bytes) -> None:   # the libFuzzer entry point, run in the child process
    for fn in TARGETS.values():
        fn(data)


def child(runs: int, corpus: Path, max_len: int) -> None:
    import atheris

    global TARGETS
    with atheris.instrument_imports(include=["stream"]):
        TARGETS = targets()
    corpus.mkdir(parents=True, exist_ok=True)
    if not any(corpus.iterdir()):
        for i, s in enumerate(seeds()):
            (corpus / f"seed-{i:03d}").write_bytes(s)
    findings = corpus.parent / "findings"
    findings.mkdir(exist_ok=True)
    atheris.Setup([sys.argv[0], str(corpus), f"-runs={runs}", f"-max_len={max_len}", "-print_final_stats=1",
                   f"-artifact_prefix={findings}/", "-close_fd_mask=0"], fuzz_one)
    atheris.Fuzz()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=200_000, help="executions (libFuzzer -runs)")
    ap.add_argument("--max-len", type=int, default=16 * 1024, help="largest input, in bytes")
    ap.add_argument("--corpus", type=Path, default=None, help="corpus directory (kept; default: a temporary one)")
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    corpus = args.corpus or Path(tempfile.mkdtemp(prefix="soccerkd-fuzz-")) / "corpus"
    if args.child:
        child(args.runs, corpus, args.max_len)
        return 0
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("atheris is not installed: pip install '.[fuzz]' (a libFuzzer wheel for CPython on Linux x86-64)",
              file=sys.stderr)
        return 2
    t0 = time.monotonic()
    # libFuzzer exits the process on a finding: it runs in a child, and this one reads its report
    proc = subprocess.run([sys.executable, __file__, "--child", "--runs", str(args.runs), "--max-len",
                           str(args.max_len), "--corpus", str(corpus)], capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    seconds = time.monotonic() - t0
    stats = {k: int(v) for k, v in re.findall(r"stat::(\w+):\s+(\d+)", log)}
    last = re.findall(r"#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)", log)
    execs, cov, ft, corp = (int(x) for x in last[-1]) if last else (0, 0, 0, 0)
    findings = sorted(p.name for p in (corpus.parent / "findings").glob("*")) if (corpus.parent / "findings").exists() else []
    crashed = proc.returncode != 0
    result = {"executions": stats.get("number_of_executed_units", execs), "coverage_edges": cov, "features": ft,
              "corpus_inputs": corp, "seconds": round(seconds, 1), "findings": findings, "exit_code": proc.returncode,
              "peak_rss_mb": stats.get("peak_rss_mb")}
    print(f"{'executions':<16}{result['executions']}\n{'coverage (cov)':<16}{cov} edges, {ft} features\n"
          f"{'corpus':<16}{corp} inputs\n{'seconds':<16}{result['seconds']}\n{'findings':<16}{len(findings)}")
    if crashed:
        print(log[-4000:], file=sys.stderr)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 1 if crashed or findings else 0


TARGETS: dict = {}

if __name__ == "__main__":
    sys.exit(main())
