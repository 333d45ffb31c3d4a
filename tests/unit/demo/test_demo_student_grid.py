"""benchmarks/demo_student.py's α × T choice: on the mean val accuracy over seeds, then the best
seed of that cell; the table and heat map it writes (no training here: run dirs are faked)."""

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "demo_student.py"


def load():
    spec = importlib.util.spec_from_file_location("demo_student_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_run(out: Path, a: float, t: float, seed: int, val: float, loss: float = 1.0, done: bool = True) -> None:
    run = out / "demo_v3_kd" / f"a{a:g}_T{t:g}" / f"seed{seed}"
    run.mkdir(parents=True)
    rows = [{"epoch": 1, "val_video_acc": val - 0.1, "val_loss": loss + 0.5},
            {"epoch": 2, "val_video_acc": val, "val_loss": loss}]
    (run / "metrics.json").write_text(json.dumps(rows))
    if done:
        (run / "summary.json").write_text("{}")


def test_choice_is_on_the_mean_over_seeds_then_the_best_seed(tmp_path):
    bench = load()
    # (0.9, 8) has the single best run (0.80) but the lower mean; (0.5, 4) wins on the mean
    fake_run(tmp_path, 0.5, 4, 0, 0.70)
    fake_run(tmp_path, 0.5, 4, 1, 0.74)
    fake_run(tmp_path, 0.9, 8, 0, 0.80)
    fake_run(tmp_path, 0.9, 8, 1, 0.50)
    choice = bench.choose_cell(tmp_path, [(0.5, 4.0), (0.9, 8.0)], [0, 1])
    chosen = choice["chosen"]
    assert (chosen["alpha"], chosen["temperature"], chosen["seed"]) == (0.5, 4.0, 1)
    assert chosen["val_video_acc"] == pytest.approx(0.72) and chosen["val_video_acc_std"] > 0
    assert chosen["run"].endswith("a0.5_T4/seed1")
    table = bench.grid_table(choice, tmp_path)
    assert "72.0 ± 2.8*" in table and "65.0 ± 21.2 |" in table
    assert json.loads((tmp_path / "grid.json").read_text())["chosen"]["seed"] == 1
    assert (tmp_path / "grid.png").stat().st_size > 0


def test_a_seed_some_cell_has_not_finished_is_left_out(tmp_path):
    bench = load()
    for a, t in [(0.5, 4.0), (0.9, 8.0)]:
        fake_run(tmp_path, a, t, 0, 0.6)
    fake_run(tmp_path, 0.5, 4.0, 1, 0.9)
    fake_run(tmp_path, 0.9, 8.0, 1, 0.9, done=False)   # still training when the grid was time-boxed
    assert bench.completed_seeds(tmp_path, [(0.5, 4.0), (0.9, 8.0)], [0, 1]) == [0]
    with pytest.raises(SystemExit, match="has not run yet"):
        bench.choose_cell(tmp_path, [(0.5, 4.0), (0.9, 8.0)], [0, 2])
