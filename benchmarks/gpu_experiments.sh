#!/usr/bin/env bash
# Paper-sized pair on procedural clips (generator v3, where time is needed), on one GPU (sized for an
# H200 with 16 cores, <= 8 min): TSM-ResNet-101 teacher (given more: TEACHER_EPOCHS, default 20),
# TSM-ResNet-18 student baseline and TSM-ResNet-18 KD students (EPOCHS, default 12), 112 px, 8 frames,
# 3 seeds each. KD runs an alpha x T grid; the sweep table shows TEST video accuracy (mean ± std over
# seeds) only for the grid cell chosen on VAL, the other cells show val only. The same recipe as the
# CPU one in docs/results.md (configs/train/synth_*.yaml), at the paper's model sizes.
#
# Usage:  OUT=/path/to/results benchmarks/gpu_experiments.sh
# Env:    OUT (required: results land here), WORK (scratch for data and checkpoints; default
#         /tmp/soccerkd_gpu), CLIPS_PER_CLASS (default 200), EPOCHS (default 12), TEACHER_EPOCHS
#         (default 20), ALPHAS (default "0.5 0.9"), TEMPS (default "4"), SEEDS (default "0 1 2"),
#         PY (python; default .venv/bin/python if present, else python3), EXTRA_SET (extra
#         space-separated config overrides for every run), REQUIRE_CUDA (default 1; 0 = CPU smoke test).
# Writes: $OUT/sweep.md, $OUT/sweep.json (the table), $OUT/val_curves.png (val accuracy per epoch), $OUT/runs/<cell>/seed<S>/{summary.json,
#         test_metrics.json,metrics.csv,curves.png,confusion_test.png,config.yaml,train.log},
#         $OUT/synth.json, $OUT/env.txt. Checkpoints stay in $WORK (too large to ship back).
set -euo pipefail

: "${OUT:?set OUT to the results directory}"
WORK="${WORK:-/tmp/soccerkd_gpu}"
CLIPS_PER_CLASS="${CLIPS_PER_CLASS:-200}"
EPOCHS="${EPOCHS:-12}"
TEACHER_EPOCHS="${TEACHER_EPOCHS:-20}"
ALPHAS="${ALPHAS:-0.5 0.9}"
TEMPS="${TEMPS:-4}"
SEEDS="${SEEDS:-0 1 2}"
if [[ -z "${PY:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
DATA="$WORK/synth_v3"
SWEEP="$WORK/sweep"
CFG=configs/train
TEACHER=gpu_synth_teacher_r101
STUDENT=gpu_synth_student_r18
KD=gpu_synth_kd_r101_r18
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
  # the CLI (not a heredoc script): its spawn-pool workers must re-import the module they run, which
  # a "python -" script read from stdin cannot offer
  log "generating $CLIPS_PER_CLASS clips/class of procedural soccer (generator v3) into $DATA"
  workers=$(( $(nproc) > 3 ? $(nproc) - 2 : 1 ))
  "$PY" -m stream.cli data synth --out "$DATA" --clips-per-class "$CLIPS_PER_CLASS" --seed 1 --size 160x120 \
      --frames 32 --version 3 --workers "$workers" 2>&1 | grep -v '^synth:' | tee "$OUT/synth.txt"
fi

train() {  # train <config-stem> <run-dir> <seed> <epochs> [extra --set ...]
  local stem=$1 dir=$2 seed=$3 epochs=$4; shift 4
  mkdir -p "$dir"
  "$PY" -m stream.cli train --config "$CFG/$stem.yaml" --out "$dir" --set "seed=$seed" \
      --set "data.root=$DATA" --set "epochs=$epochs" --set progress=false "${extra[@]}" "$@" > "$dir/train.log" 2>&1 \
    || { echo "FAILED: $stem seed $seed (tail of $dir/train.log):"; tail -n 30 "$dir/train.log"; return 1; }
  echo "  done $stem seed $seed: $(grep -o 'test (best epoch.*' "$dir/train.log" | head -1)"
}

log "phase 1: teacher (R101, $TEACHER_EPOCHS epochs) and student baseline (R18, $EPOCHS epochs) x seeds [$SEEDS], in parallel"
pids=()
for s in $SEEDS; do
  train "$TEACHER" "$SWEEP/$TEACHER/seed$s" "$s" "$TEACHER_EPOCHS" & pids+=($!)
  train "$STUDENT" "$SWEEP/$STUDENT/seed$s" "$s" "$EPOCHS" & pids+=($!)
done
fail=0; for p in "${pids[@]}"; do wait "$p" || fail=1; done
[[ $fail == 0 ]] || { log "phase 1 failed"; exit 1; }

log "phase 2: KD (frozen same-seed R101 teacher -> R18), alpha in [$ALPHAS] x T in [$TEMPS], in parallel"
pids=()
for s in $SEEDS; do
  for a in $ALPHAS; do
    for t in $TEMPS; do
      train "$KD" "$SWEEP/$KD/a${a}_T${t}/seed$s" "$s" "$EPOCHS" --set "kd.alpha=$a" --set "kd.temperature=$t" \
          --set "kd.teacher_checkpoint=$SWEEP/$TEACHER/seed$s/best.pt" --set data.num_workers=2 & pids+=($!)
    done
  done
done
fail=0; for p in "${pids[@]}"; do wait "$p" || fail=1; done
[[ $fail == 0 ]] || { log "phase 2 failed"; exit 1; }

log "tabulating (reuses every finished run's summary.json; test shown only for the KD cell chosen on val)"
seeds_csv=$(echo $SEEDS | tr ' ' ',')
alphas_csv=$(echo $ALPHAS | tr ' ' ','); temps_csv=$(echo $TEMPS | tr ' ' ',')
# one call per config, each with the epochs its runs used, so that the config hashes match
"$PY" -m stream.cli sweep --config "$CFG/$TEACHER.yaml" --seeds "$seeds_csv" --out "$SWEEP" \
    --set "data.root=$DATA" --set "epochs=$TEACHER_EPOCHS" --set progress=false "${extra[@]}" > /dev/null
"$PY" -m stream.cli sweep --config "$CFG/$STUDENT.yaml" --seeds "$seeds_csv" --out "$SWEEP" \
    --set "data.root=$DATA" --set "epochs=$EPOCHS" --set progress=false "${extra[@]}" > /dev/null
"$PY" -m stream.cli sweep --config "$CFG/$KD.yaml" --alphas "$alphas_csv" --temperatures "$temps_csv" \
    --seeds "$seeds_csv" --out "$SWEEP" --set "data.root=$DATA" --set "epochs=$EPOCHS" --set progress=false \
    "${extra[@]}" --set data.num_workers=2 > /dev/null
"$PY" - "$SWEEP" "$CFG" "$seeds_csv" "$alphas_csv" "$temps_csv" <<'PYEOF'
import json, sys
from pathlib import Path
from soccerkd.train.sweep import _write, plan_cells
out, cfg, seeds, alphas, temps = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
cells = plan_cells([f"{cfg}/{n}.yaml" for n in ("gpu_synth_teacher_r101", "gpu_synth_student_r18", "gpu_synth_kd_r101_r18")],
                   alphas=[float(a) for a in alphas.split(",")], temperatures=[float(t) for t in temps.split(",")], out=out)
runs = {c.tag: [json.loads(p.read_text()) for p in sorted((out / c.tag).glob("seed*/summary.json"))] for c in cells}
_write(out, cells, runs, [int(s) for s in seeds.split(",")])
from soccerkd.train.plots import plot_val_accuracy
groups = {"teacher R101": sorted((out / "gpu_synth_teacher_r101").glob("seed*")),
          "student R18": sorted((out / "gpu_synth_student_r18").glob("seed*")),
          "KD R18 (all α, T)": sorted((out / "gpu_synth_kd_r101_r18").glob("*/seed*"))}
plot_val_accuracy({k: v for k, v in groups.items() if v}, out / "val_curves.png",
                  title="val video accuracy per epoch (generator v3)", chance=0.25)
PYEOF
cp "$SWEEP/sweep.md" "$SWEEP/sweep.json" "$SWEEP/val_curves.png" "$OUT/"
(cd "$SWEEP" && find . -type f \( -name '*.json' -o -name '*.csv' -o -name '*.png' -o -name '*.yaml' -o -name '*.log' \) \
    -not -path './sweep.*' -print0 | while IFS= read -r -d '' f; do mkdir -p "$OUT/runs/$(dirname "$f")"; cp "$f" "$OUT/runs/$f"; done)
log "done; results in $OUT/sweep.md"
cat "$OUT/sweep.md"
