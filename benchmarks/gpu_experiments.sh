#!/usr/bin/env bash
# Paper-sized pair on procedural clips, on one GPU (sized for an H200 with 16 cores, <= 8 min):
# TSM-ResNet-101 teacher, TSM-ResNet-18 student baseline and TSM-ResNet-18 KD student, 112 px,
# 8 frames, 3 seeds each; video accuracy on the TEST split, mean ± std over seeds.
#
# Usage:  OUT=/path/to/results benchmarks/gpu_experiments.sh
# Env:    OUT (required: results land here), WORK (scratch for data and checkpoints; default
#         /tmp/soccerkd_gpu), CLIPS_PER_CLASS (default 200), EPOCHS (default 12), SEEDS (default "0 1 2"),
#         PY (python; default .venv/bin/python if present, else python3), EXTRA_SET (extra
#         space-separated config overrides for every run), REQUIRE_CUDA (default 1; 0 = CPU smoke test).
# Writes: $OUT/sweep.md, $OUT/sweep.json (the table), $OUT/runs/<cell>/seed<S>/{summary.json,
#         test_metrics.json,metrics.csv,curves.png,confusion_test.png,config.yaml,train.log},
#         $OUT/synth.json, $OUT/env.txt. Checkpoints stay in $WORK (too large to ship back).
set -euo pipefail

: "${OUT:?set OUT to the results directory}"
WORK="${WORK:-/tmp/soccerkd_gpu}"
CLIPS_PER_CLASS="${CLIPS_PER_CLASS:-200}"
EPOCHS="${EPOCHS:-12}"
SEEDS="${SEEDS:-0 1 2}"
if [[ -z "${PY:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
DATA="$WORK/synth"
SWEEP="$WORK/sweep"
CFG=configs/train
TEACHER=gpu_synth_teacher_r101
STUDENT=gpu_synth_student_r18
KD=gpu_synth_kd_r101_r18
ALPHA=0.9
TEMP=4
mkdir -p "$OUT" "$WORK" "$SWEEP"
start=$(date +%s)
log() { echo "[gpu_experiments +$(( $(date +%s) - start ))s] $*"; }

log "environment"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi";
  nproc; "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'; } | tee "$OUT/env.txt"
if [[ "${REQUIRE_CUDA:-1}" == 1 ]]; then
  "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "CUDA is not available")'
fi
extra=(); for kv in ${EXTRA_SET:-}; do extra+=(--set "$kv"); done

if [[ ! -f "$DATA/manifest.json" ]]; then
  log "generating $CLIPS_PER_CLASS clips/class of procedural soccer into $DATA"
  "$PY" - "$DATA" "$CLIPS_PER_CLASS" "$OUT/synth.json" <<'PYEOF'
import json, os, sys
from soccerkd.data.synth import SynthConfig, generate_dataset
out, n, report = sys.argv[1], int(sys.argv[2]), sys.argv[3]
summary = generate_dataset(out, clips_per_class=n, seed=1, cfg=SynthConfig(width=160, height=120),
                           workers=max(1, (os.cpu_count() or 2) - 2), progress=False)
print(json.dumps({k: v for k, v in summary.items() if k != "counts"}))
json.dump(summary, open(report, "w"), indent=2)
PYEOF
fi

train() {  # train <config-stem> <run-dir> <seed> [extra --set ...]
  local stem=$1 dir=$2 seed=$3; shift 3
  mkdir -p "$dir"
  "$PY" -m stream.cli train --config "$CFG/$stem.yaml" --out "$dir" --set "seed=$seed" \
      --set "data.root=$DATA" --set "epochs=$EPOCHS" --set progress=false "${extra[@]}" "$@" > "$dir/train.log" 2>&1 \
    || { echo "FAILED: $stem seed $seed (tail of $dir/train.log):"; tail -n 30 "$dir/train.log"; return 1; }
  echo "  done $stem seed $seed: $(grep -o 'test (best epoch.*' "$dir/train.log" | head -1)"
}

log "phase 1: teacher (R101) and student baseline (R18) x seeds [$SEEDS], in parallel on the GPU"
pids=()
for s in $SEEDS; do
  train "$TEACHER" "$SWEEP/$TEACHER/seed$s" "$s" & pids+=($!)
  train "$STUDENT" "$SWEEP/$STUDENT/seed$s" "$s" & pids+=($!)
done
fail=0; for p in "${pids[@]}"; do wait "$p" || fail=1; done
[[ $fail == 0 ]] || { log "phase 1 failed"; exit 1; }

log "phase 2: KD (frozen same-seed R101 teacher -> R18), alpha=$ALPHA T=$TEMP, in parallel"
pids=()
for s in $SEEDS; do
  train "$KD" "$SWEEP/$KD/a${ALPHA}_T${TEMP}/seed$s" "$s" --set "kd.alpha=$ALPHA" --set "kd.temperature=$TEMP" \
      --set "kd.teacher_checkpoint=$SWEEP/$TEACHER/seed$s/best.pt" & pids+=($!)
done
fail=0; for p in "${pids[@]}"; do wait "$p" || fail=1; done
[[ $fail == 0 ]] || { log "phase 2 failed"; exit 1; }

log "tabulating (reuses every finished run's summary.json)"
seeds_csv=$(echo $SEEDS | tr ' ' ',')
"$PY" -m stream.cli sweep --config "$CFG/$TEACHER.yaml" --config "$CFG/$STUDENT.yaml" --config "$CFG/$KD.yaml" \
    --alphas "$ALPHA" --temperatures "$TEMP" --seeds "$seeds_csv" --out "$SWEEP" --set "data.root=$DATA"
cp "$SWEEP/sweep.md" "$SWEEP/sweep.json" "$OUT/"
(cd "$SWEEP" && find . -type f \( -name '*.json' -o -name '*.csv' -o -name '*.png' -o -name '*.yaml' -o -name '*.log' \) \
    -not -path './sweep.*' -print0 | while IFS= read -r -d '' f; do mkdir -p "$OUT/runs/$(dirname "$f")"; cp "$f" "$OUT/runs/$f"; done)
log "done; results in $OUT/sweep.md"
cat "$OUT/sweep.md"
