"""``benchmarks/gpu_session.sh`` in its CPU smoke mode (``SMOKE=1``): every step and argument of
the one call a lent GPU gets runs at toy sizes and leaves its files, so the GPU's few minutes
are not lost to a renamed flag or a broken summary. The script does not stop at a failed step
(it keeps going to save what it can), so this checks what each step wrote."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PIPELINE_RUNS = {"zero_gpu_320", "zero_cpu_320", "student_gpu_320", "student_cpu_320", "student_gpu_720",
                 "student_gpu_320_w4"}


@pytest.mark.timeout(600)
def test_the_gpu_session_script_runs_every_step_on_the_cpu(tmp_path):
    out = tmp_path / "out"
    # BUDGET_S: the experiments step runs only with more than 60 s left; 120 leaves it none, so the
    # smoke stays short (gpu_experiments.sh has a CPU mode of its own, REQUIRE_CUDA=0)
    env = dict(os.environ, SMOKE="1", OUT=str(out), WORK=str(tmp_path / "work"), PY=sys.executable, BUDGET_S="120")
    proc = subprocess.run(["bash", "benchmarks/gpu_session.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=560)
    log = proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.returncode == 0, log
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8, files   # the device tool brings back at most 8 files
    assert {"session.log", "bench_models.json", "pipeline_runs.json", "gpu_tests.txt"} <= set(files), files

    models = json.loads((out / "bench_models.json").read_text())
    assert models, "bench_models.py wrote an empty result"

    runs = json.loads((out / "pipeline_runs.json").read_text())
    assert set(runs) == PIPELINE_RUNS, log
    for name, run in runs.items():
        assert run["pipeline"]["windows"] == run["pipeline"]["expected_windows"] > 0, name
        assert run["raw_decode_frames_per_s"] > 0 and run["raw_preprocess_frames_per_s"] > 0, name
    assert runs["student_gpu_320_w4"]["workers"] > 1
    assert [pt["cameras"] for pt in runs["student_gpu_320"]["latency_sweep"]], "the sweep measured no point"

    tests = (out / "gpu_tests.txt").read_text()
    assert "skipped" in tests and "error" not in tests.lower(), tests[-2000:]
    assert "done" in (out / "session.log").read_text().splitlines()[-1]
