#!/usr/bin/env bash
# One call to a GPU machine (an H200: torch, torchvision, opencv, PyYAML, tqdm, matplotlib; no
# kafka-python, no Java), <= 8 minutes, <= 8 files in $OUT:
#   1. bench_models.py: teacher vs student throughput side by side (bf16, channels-last);
#   2. the gpu-marked tests (pytest from .whl/ wheels if the machine lacks it);
#   3. bench_pipeline.py in process (no broker): 320x240 and 1280x720, the zero model and the
#      student, CPU and GPU (nvJPEG) decode, with a camera sweep that finds the most cameras whose
#      p99 latency stays at or under the window span + 150 ms;
#   4. gpu_experiments.sh (teacher / student / KD on procedural clips) in the time that is left.
# Files: session.log, bench_models.json, pipeline_runs.json, gpu_tests.txt, experiments.log,
#        experiments.tar.gz.
# Usage (repo root): OUT=/path/to/results bash benchmarks/gpu_session.sh     (PY defaults to python3)
# SMOKE=1: the same steps on the CPU at toy sizes (about 75 s on 2 cores; the experiments too when
# BUDGET_S leaves them over 60 s), to check the script itself before spending GPU time on it;
# tests/integration/test_gpu_session_smoke.py runs it.
set -uo pipefail
: "${OUT:?set OUT to the results directory}"
export PY="${PY:-python3}" WORK="${WORK:-/tmp/soccerkd_gpu}" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$WORK/pipeline"
start=$(date +%s)
BUDGET_S=${BUDGET_S:-470}
if [[ "${SMOKE:-0}" == 1 ]]; then   # CPU, toy sizes: every step and argument, none of the figures
  DEVICE=cpu AMP=none GPU_DECODE=cpu SHRINK=64 CLIP_S=2 BATCH=4 THREADS=1 ITERS=2 WARMUP=1 SIZE=32 WORKERS=2
  SWEEP_320=1.0 SWEEP_720=1.0
  MODEL_FLAGS=() PIPE_FLAGS=(--threads 1 --rounds 1 --reference-seconds 0.1)
  export REQUIRE_CUDA=0 CLIPS_PER_CLASS=4 STUDENT_PER_CLASS=3 EPOCHS=1 TEACHER_EPOCHS=1 ALPHAS=0.5 TEMPS=2 SEEDS=0
else
  DEVICE=cuda AMP=bf16 GPU_DECODE=gpu SHRINK=1 CLIP_S=6 BATCH=128 THREADS=12 ITERS=20 WARMUP=5 SIZE=112 WORKERS=4
  SWEEP_320=0.5,0.85,1.0 SWEEP_720=0.5,1.0
  MODEL_FLAGS=(--amp) PIPE_FLAGS=()
fi
cams() { echo $(( $1 / SHRINK > 0 ? $1 / SHRINK : 1 )); }
left() { echo $(( BUDGET_S - ($(date +%s) - start) )); }
# one pipeline run: at most 150 s and the budget left (the smoke's toy runs: 100 s each, whatever is left)
step_limit() { local l; l=$(left); [[ "${SMOKE:-0}" == 1 ]] && l=100; echo $(( l > 150 ? 150 : (l > 10 ? l : 10) )); }
log() { echo "[gpu_session +$(( $(date +%s) - start ))s] $*" | tee -a "$OUT/session.log"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$OUT/session.log"
"$PY" -c "import torch, torchvision, cv2; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'cv2', cv2.__version__, 'cores', __import__('os').cpu_count())" 2>&1 | tee -a "$OUT/session.log"

log "1. model benchmark (teacher vs student, bf16, channels_last)"
timeout 90 "$PY" benchmarks/bench_models.py --device "$DEVICE" --frames 8 --size "$SIZE" --batch "$BATCH" --iters "$ITERS" \
    --warmup "$WARMUP" "${MODEL_FLAGS[@]}" --channels-last --out "$OUT/bench_models.json" 2>&1 | tail -8 | tee -a "$OUT/session.log"

log "2. gpu-marked tests (first: quick, and a failure here says what the figures are worth)"
if ! "$PY" -c "import pytest" 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
# tests needing kafka-python (absent there) fail to collect; the gpu-marked ones are elsewhere
timeout 120 "$PY" -m pytest -q -m gpu -p no:cacheprovider -o addopts="" --continue-on-collection-errors tests/unit > "$OUT/gpu_tests.txt" 2>&1
tail -5 "$OUT/gpu_tests.txt" | tee -a "$OUT/session.log"

log "3. pipeline benchmarks, the most wanted first, each within the time left (in process; 16 cores: 12 decode threads for CPU decode)"
run() {   # name, then bench_pipeline.py arguments
  local name=$1; shift
  log "   $name: $*"
  timeout "$(step_limit)" "$PY" benchmarks/bench_pipeline.py --no-broker --device "$DEVICE" --amp "$AMP" --seconds "$CLIP_S" \
      --warmup 1.5 --max-batch "$BATCH" --max-poll-records 256 "${PIPE_FLAGS[@]}" --out "$WORK/pipeline/$name.json" "$@" 2>&1 \
      | grep -v '^bench:' | tail -14 | tee -a "$OUT/session.log"
}
run student_gpu_320 --model tsm_resnet18 --size "$SIZE" --decode "$GPU_DECODE" --frame-size 320x240 \
    --cameras "$(cams 256)" --sweep "$SWEEP_320"
run student_gpu_720 --model tsm_resnet18 --size "$SIZE" --decode "$GPU_DECODE" --frame-size 1280x720 \
    --cameras "$(cams 96)" --sweep "$SWEEP_720"
run student_gpu_320_w4 --model tsm_resnet18 --size "$SIZE" --decode "$GPU_DECODE" --frame-size 320x240 \
    --cameras "$(cams 256)" --workers "$WORKERS" --skip-latency
run zero_gpu_320   --model zero --decode "$GPU_DECODE" --frame-size 320x240 --cameras "$(cams 256)" --skip-latency
run student_cpu_320 --model tsm_resnet18 --size "$SIZE" --decode cpu --decode-threads "$THREADS" --frame-size 320x240 \
    --cameras "$(cams 128)" --skip-latency
run zero_cpu_320   --model zero --decode cpu --decode-threads "$THREADS" --frame-size 320x240 --cameras "$(cams 256)" \
    --skip-latency
"$PY" - "$WORK/pipeline" "$OUT/pipeline_runs.json" <<'PYEOF'
import json, pathlib, sys
runs = {p.stem: json.loads(p.read_text()) for p in sorted(pathlib.Path(sys.argv[1]).glob("*.json"))}
pathlib.Path(sys.argv[2]).write_text(json.dumps(runs, indent=1))
print(f"{'run':22} {'frames/s':>9} {'raw dec':>8} {'raw pre':>8} {'eff':>6} {'cams cap':>8} {'max cams p99 ok':>15}")
for k, r in runs.items():
    print(f"{k:22} {r['pipeline']['frames_per_s']:9.0f} {r['raw_decode_frames_per_s']:8.0f} "
          f"{r.get('raw_preprocess_frames_per_s', float('nan')):8.0f} "
          f"{r['pipeline_efficiency']:6.3f} {r['capacity_cameras']:8.0f} {str(r['max_cameras_within_budget']):>15}")
PYEOF

log "4. training experiments with the $(left) s left"
if [ "$(left)" -gt 60 ]; then
  OUT_EXP="$WORK/experiments"
  OUT="$OUT_EXP" timeout "$(left)" bash benchmarks/gpu_experiments.sh > "$OUT/experiments.log" 2>&1
  tail -25 "$OUT/experiments.log" | tee -a "$OUT/session.log"
  tar -czf "$OUT/experiments.tar.gz" -C "$WORK" experiments 2>/dev/null
fi
log "done"
