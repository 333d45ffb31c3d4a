#!/usr/bin/env bash
# The CPU KD recipe (benchmarks/cpu_kd_recipe.py, docs/results.md) at the paper's sizes on one GPU
# (sized for an H200 with 16 cores, <= 8 min): generator v3 at 160x120, 32 frames; TSM-ResNet-101
# teacher given more (the whole training split, TEACHER_EPOCHS, default 20), TSM-ResNet-18 students
# (STUDENT_PER_CLASS training clips per class, EPOCHS, default 12), 112 px, 8 frames, RGB
# differences into conv1 as on CPU, random init. One teacher (seed 0) for every KD seed; alpha x T
# chosen on VAL with GRID_SEED, then the chosen cell for SEEDS; test is read only for that cell.
# The stages run as parallel processes of the same recipe script, so the table comes out exactly
# as on CPU.
#
# Usage:  OUT=/path/to/results benchmarks/gpu_experiments.sh
# Env:    OUT (required), WORK (scratch for data and checkpoints; default /tmp/soccerkd_gpu),
#         CLIPS_PER_CLASS (default 400: 280 training clips per class for the teacher),
#         STUDENT_PER_CLASS (default 80, the CPU recipe's 150/525 ratio), EPOCHS (12),
#         TEACHER_EPOCHS (20), ALPHAS ("0.5 0.9"), TEMPS ("2 4 8"), SEEDS ("0 1 2"), GRID_SEED (0),
#         PY (default .venv/bin/python if present, else python3), EXTRA_SET (extra space-separated
#         config overrides for every run), REQUIRE_CUDA (default 1; 0 = CPU smoke test).
# Writes: $OUT/recipe.md, $OUT/recipe.json (the table), $OUT/val_curves.png, $OUT/runs/<cell>/seed<S>/
#         {summary.json,test_metrics.json,metrics.csv,curves.png,confusion_test.png,config.yaml},
#         $OUT/logs/*.log, $OUT/synth.txt, $OUT/env.txt. Checkpoints stay in $WORK (too large to ship back).
set -euo pipefail

: "${OUT:?set OUT to the results directory}"
WORK="${WORK:-/tmp/soccerkd_gpu}"
CLIPS_PER_CLASS="${CLIPS_PER_CLASS:-400}"
STUDENT_PER_CLASS="${STUDENT_PER_CLASS:-80}"
EPOCHS="${EPOCHS:-12}"
TEACHER_EPOCHS="${TEACHER_EPOCHS:-20}"
ALPHAS="${ALPHAS:-0.5 0.9}"
TEMPS="${TEMPS:-2 4 8}"
SEEDS="${SEEDS:-0 1 2}"
GRID_SEED="${GRID_SEED:-0}"
if [[ -z "${PY:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
DATA="$WORK/synth_v3"
SWEEP="$WORK/sweep"
CFG=configs/train
mkdir -p "$OUT/logs" "$WORK" "$SWEEP"
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
  # the CLI (not a heredoc script): its spawn-pool workers must re-import the module they run, which
  # a "python -" script read from stdin cannot offer
  log "generating $CLIPS_PER_CLASS clips/class of procedural soccer (generator v3) into $DATA"
  workers=$(( $(nproc) > 3 ? $(nproc) - 2 : 1 ))
  "$PY" -m stream.cli data synth --out "$DATA" --clips-per-class "$CLIPS_PER_CLASS" --seed 1 --size 160x120 \
      --frames 32 --version 3 --workers "$workers" 2>&1 | grep -v '^synth:' | tee "$OUT/synth.txt"
fi

csv() { echo "$*" | tr ' ' ','; }
recipe() {  # recipe <log name> <recipe.py arguments...>
  local name=$1; shift
  "$PY" benchmarks/cpu_kd_recipe.py --out "$SWEEP" --teacher-config "$CFG/gpu_synth_teacher_r101.yaml" \
      --student-config "$CFG/gpu_synth_student_r18.yaml" --kd-config "$CFG/gpu_synth_kd_r101_r18.yaml" \
      --student-per-class "$STUDENT_PER_CLASS" --seeds "$(csv $SEEDS)" --grid-seed "$GRID_SEED" \
      --alphas "$(csv $ALPHAS)" --temperatures "$(csv $TEMPS)" --set "data.root=$DATA" --set progress=false \
      "${extra[@]}" "$@" > "$OUT/logs/$name.log" 2>&1 \
    || { echo "FAILED: $name (tail of $OUT/logs/$name.log):"; tail -n 30 "$OUT/logs/$name.log"; return 1; }
  echo "  done $name: $(grep -o 'test (best epoch.*' "$OUT/logs/$name.log" | tail -1)"
}
waitall() { local fail=0; for p in "$@"; do wait "$p" || fail=1; done; [[ $fail == 0 ]] || { log "a stage failed"; exit 1; }; }

recipe manifest --stages manifest
log "phase 1: teacher (R101, whole training split, $TEACHER_EPOCHS epochs) and students (R18, $STUDENT_PER_CLASS clips/class, $EPOCHS epochs) x seeds [$SEEDS], in parallel"
pids=()
recipe teacher --stages teacher --teacher-seeds 0 --set "epochs=$TEACHER_EPOCHS" & pids+=($!)
for s in $SEEDS; do recipe "student_seed$s" --stages student --seeds "$s" --set "epochs=$EPOCHS" & pids+=($!); done
waitall "${pids[@]}"

log "phase 2: KD grid alpha in [$ALPHAS] x T in [$TEMPS], seed $GRID_SEED, in parallel (val only)"
pids=()
for a in $ALPHAS; do for t in $TEMPS; do
  recipe "grid_a${a}_T${t}" --stages grid --alphas "$a" --temperatures "$t" --set "epochs=$EPOCHS" \
      --set data.num_workers=2 & pids+=($!)
done; done
waitall "${pids[@]}"

log "phase 3: the cell chosen on val, seeds [$SEEDS], in parallel"
pids=()
for s in $SEEDS; do recipe "kd_seed$s" --stages kd --seeds "$s" --set "epochs=$EPOCHS" --set data.num_workers=2 & pids+=($!); done
waitall "${pids[@]}"

log "table (test only for the chosen cell)"
recipe table --stages table --teacher-seeds 0 --set "epochs=$EPOCHS" --plot "$OUT/val_curves.png" \
    --title "GPU recipe, generator v3, 112 px (one line per seed)"
cp "$SWEEP/recipe.md" "$SWEEP/recipe.json" "$SWEEP/choice.json" "$OUT/"
(cd "$SWEEP" && find . -type f \( -name '*.json' -o -name '*.csv' -o -name '*.png' -o -name '*.yaml' \) \
    -not -path './sweep.*' -print0 | while IFS= read -r -d '' f; do mkdir -p "$OUT/runs/$(dirname "$f")"; cp "$f" "$OUT/runs/$f"; done)
log "done; results in $OUT/recipe.md"
cat "$OUT/recipe.md"
