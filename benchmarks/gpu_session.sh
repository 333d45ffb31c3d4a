#!/usr/bin/env bash
# One device session on a GPU machine (what the lead runs once on an H200, <= ~9 min wall):
#   1. benchmarks/gpu_experiments.sh: teacher / student / KD x 3 seeds on procedural clips;
#   2. the KD student of seed 0 compacted to int8 (the demo's shipped student);
#   3. benchmarks/bench_models.py: teacher vs student throughput side by side on the GPU;
#   4. the gpu-marked tests.
# Usage: OUT=/path/to/results benchmarks/gpu_session.sh   (PY defaults to python3)
set -uo pipefail
: "${OUT:?set OUT to the results directory}"
export PY="${PY:-python3}" WORK="${WORK:-/tmp/soccerkd_gpu}" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
start=$(date +%s)
log() { echo "[gpu_session +$(( $(date +%s) - start ))s] $*"; }

log "model benchmark (teacher vs student, bf16, channels_last)"
timeout 120 "$PY" benchmarks/bench_models.py --device cuda --frames 8 --size 224 --batch 32 --iters 30 --warmup 5 \
    --amp --channels-last --out "$OUT/bench_models_h200.json" 2>&1 | tee "$OUT/bench_models_h200.txt" | tail -20

log "experiments"
timeout "${EXPERIMENT_TIMEOUT:-420}" bash benchmarks/gpu_experiments.sh 2>&1 | tee "$OUT/experiments.log" | grep -v '^  done' | tail -40

log "compact demo student"
"$PY" - "$WORK/sweep" "$OUT/demo_student.pt" <<'PYEOF'
import glob, sys
from soccerkd.compact import compact_checkpoint
from soccerkd.train.checkpoint import load_checkpoint, save_checkpoint
best = sorted(glob.glob(f"{sys.argv[1]}/gpu_synth_kd_r101_r18/*/seed0/best.pt"))
if not best:
    sys.exit("no KD seed-0 checkpoint found")
save_checkpoint(sys.argv[2], **compact_checkpoint(load_checkpoint(best[0])))
print("compacted", best[0], "->", sys.argv[2])
PYEOF

log "gpu tests"
timeout 120 "$PY" -m pytest -q -m gpu -p no:cacheprovider tests/unit 2>&1 | tail -5
log "done"
