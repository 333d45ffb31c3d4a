"""Table and val-accuracy plot of the earlier CPU v3 runs at 40 px in docs/results.md (runs/synth_v3_sweep, runs/synth_v3_student_4ep; the generator as of commit 44adaf2, plain RGB, all at chance).

Uses the sweep module's own aggregation over each run's summary.json (test shown only for cells
chosen on val) and plots.plot_val_accuracy over each run's metrics.json. Run from the repository root.
"""
import json; from pathlib import Path
from soccerkd.train.sweep import plan_cells, _write
from soccerkd.train.plots import plot_val_accuracy
out = Path('runs/synth_v3_sweep')
names = [n for n in ('teacher', 'student', 'student_frame1', 'kd') if list((out / f'synth_{n}').glob('**/summary.json'))]
cells = plan_cells([f'configs/train/synth_{n}.yaml' for n in names], out=out)
_write(out, cells, {c.tag: [json.loads(p.read_text()) for p in sorted((out / c.tag).glob('seed*/summary.json'))] for c in cells}, [0])
print((out / 'sweep.md').read_text())
groups = {'teacher TSM-R50 (3 epochs)': [out / 'synth_teacher/seed0'], 'student TSM-R18 (2 epochs)': [out / 'synth_student/seed0'],
          'frames=1 control (2 epochs)': [out / 'synth_student_frame1/seed0'], 'student TSM-R18 (4 epochs, 1 warm-up)': [Path('runs/synth_v3_student_4ep')], 'KD (α 0.5, T 4)': sorted((out / 'synth_kd').glob('*/seed0'))}
plot_val_accuracy({k: v for k, v in groups.items() if v and all((d / 'metrics.json').is_file() for d in v)},
                  'docs/results_val_curves_cpu_40px.png', title='CPU recipe, generator v3, 40 px, seed 0', chance=0.25)
