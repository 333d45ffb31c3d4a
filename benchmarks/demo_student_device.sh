#!/usr/bin/env bash
# The shipped demo student's run on one machine with a GPU and 16 cores (issue 25, item 1): data, the
# teacher, the α × T grid over seeds as concurrent processes on the one GPU, the choice on val, the
# int8 student; then packs what comes back (figures, logs, the chosen cell's fp32 checkpoints, the
# teacher's) into $RESULTS. docs/results.md has the figures. Every stage is benchmarks/demo_student.py;
# on a CPU the same commands run sequentially (--jobs 1), only slower.
#
#   bash benchmarks/demo_student_device.sh                  # RESULTS=runs/demo_v3/results
#   MATCHES=6 DATA=data/smoke OUTDIR=runs/smoke JOBS=2 SEEDS=0,1 EXTRA="--set epochs=1" BUDGET=300 \
#       bash benchmarks/demo_student_device.sh              # a smoke run on a CPU
set -euo pipefail
BUDGET=${BUDGET:-560}          # seconds for the whole script: the grid starts no run that would end later
OUTDIR=${OUTDIR:-runs/demo_v3}
RESULTS=${RESULTS:-$OUTDIR/results}
DATA=${DATA:-data/synth_v3_match64}
MATCHES=${MATCHES:-240}
WORKERS=${WORKERS:-16}
JOBS=${JOBS:-12}
SEEDS=${SEEDS:-0,1,2,3}
CELLS=${CELLS:-0.3:2,0.3:4,0.3:8,0.5:2,0.5:4,0.5:8,0.7:2,0.7:4,0.7:8,0.9:2,0.9:4,0.9:8}
PY=${PY:-python3}
EXTRA=${EXTRA:-}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
start=$(date +%s)
mkdir -p "$RESULTS"
common=(--out "$OUTDIR" --data "$DATA")
# shellcheck disable=SC2086
$PY benchmarks/demo_student.py --stages data "${common[@]}" --matches "$MATCHES" --workers "$WORKERS" --cells "$CELLS" $EXTRA
echo "data done at $(( $(date +%s) - start )) s"
# shellcheck disable=SC2086
$PY benchmarks/demo_student.py --stages teacher "${common[@]}" --cells "$CELLS" $EXTRA
echo "teacher done at $(( $(date +%s) - start )) s"
left=$(( BUDGET - ($(date +%s) - start) - 40 ))
# shellcheck disable=SC2086
$PY benchmarks/demo_student.py --stages grid,ship "${common[@]}" --cells "$CELLS" --seeds "$SEEDS" --jobs "$JOBS" \
    --launch-until "$left" --ship "$RESULTS/demo_student.pt" $EXTRA | tee "$RESULTS/grid_ship.txt"
echo "grid and ship done at $(( $(date +%s) - start )) s"
$PY - "$OUTDIR" "$RESULTS" <<'EOF'
import json, shutil, sys, tarfile
from pathlib import Path
out, res = Path(sys.argv[1]), Path(sys.argv[2])
choice = json.loads((out / "grid.json").read_text())
keep = [Path(r["run"]) / "best.pt" for r in choice["chosen"]["runs"]]
with tarfile.open(res / "runs.tar.gz", "w:gz") as tar:
    for p in sorted(out.rglob("*")):
        if p.is_file() and res not in p.parents and (p.suffix in {".json", ".md", ".yaml", ".log"} or p.name == "grid.png"
                                                           or p in keep):
            tar.add(p, arcname=str(p.relative_to(out.parent)))
shutil.copy(out / "demo_v3_teacher" / "seed0" / "best.pt", res / "teacher_best.pt")
print("packed", res / "runs.tar.gz", (res / "runs.tar.gz").stat().st_size // 1000, "kB")
EOF
echo "all done at $(( $(date +%s) - start )) s"
