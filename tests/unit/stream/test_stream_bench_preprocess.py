"""Smoke test of benchmarks/bench_preprocess.py at a tiny size (the timings themselves are not asserted)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_bench_preprocess_writes_table_and_json_with_the_demo_predictions(tmp_path):
    out = tmp_path / "pre.json"
    proc = subprocess.run([sys.executable, "benchmarks/bench_preprocess.py", "--frame-size", "160x120", "--rounds", "1",
                           "--clips", "1", "--checkpoint", "demo", "--out", str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    t = report["us_per_frame"]
    decode, resize = t["decode cv2.imdecode"], t["resize torch antialiased bilinear (training's)"]
    assert abs(report["ceiling_vs_raw_decode"] - decode / (decode + resize)) < 1e-9
    from soccerkd.train.checkpoint import load_checkpoint
    from stream.inference.artifacts import resolve_checkpoint

    spec = load_checkpoint(resolve_checkpoint("demo"))["input_spec"]
    assert (report["resize"], report["size"]) == (spec["resize"], spec["size"])   # the demo student's spec, not --size
    assert spec["size"] != 112   # so the check above tells the spec from --size's default
    fid = report["draft_fidelity"]
    assert fid["frames"] == 16 and 0 < fid["draft_vs_exact_mean"] <= fid["draft_vs_exact_p99"]
    assert fid["windows"] == 3 and 0 <= fid["top1_agree"] <= 3
    assert "ceiling of pipeline/raw decode" in proc.stdout and "top-1 equal on" in proc.stdout
