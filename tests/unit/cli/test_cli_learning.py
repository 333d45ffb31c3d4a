"""The learning and offline commands through the real CLI (a subprocess, from a folder that is not
the checkout): outputs where the user asks, checkpoint contents, one-line errors with exit 2."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

ROOT = Path(__file__).resolve().parents[3]
CLASSES = ("dribble", "kick", "run", "walk")


def cli(*args, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "stream.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def user_error(proc: subprocess.CompletedProcess) -> str:
    """The one stderr line of a user error (exit 2, no traceback)."""
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("soccerkd: error: ")
    return lines[0]


def write_video(path: Path, *, frames: int = 10, size: tuple[int, int] = (24, 24), colour: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(colour)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    for _ in range(frames):
        frame = rng.integers(0, 60, (size[1], size[0], 3), dtype=np.uint8)
        frame[:, :, colour % 3] += 120   # the class shows as a colour cast
        writer.write(frame)
    writer.release()
    return path


def write_dataset(root: Path, per_class: int = 3) -> Path:
    for ci, name in enumerate(CLASSES):
        for v in range(per_class):
            write_video(root / name / f"v{v}.avi", colour=ci)
    return root


@pytest.fixture
def elsewhere(tmp_path):
    """A working directory outside the checkout."""
    d = tmp_path / "elsewhere"
    d.mkdir()
    return d


def test_help_shows_defaults_and_real_files(elsewhere):
    ev = cli("evaluate", "--help", cwd=elsewhere).stdout
    assert "(default: test)" in ev and "./runs/eval/<checkpoint stem>/" in ev
    show = " ".join(cli("config", "show", "--help", cwd=elsewhere).stdout.split())
    cited = re.search(r"configs/\S+\.yaml", show).group(0)
    assert (ROOT / cited).is_file(), cited
    assert "--keep {last,best,both}" in cli("train", "--help", cwd=elsewhere).stdout


def test_best_pt_is_weights_only_last_pt_resumes_and_evaluate_writes_under_cwd(tmp_path, elsewhere):
    import torch

    data, run = write_dataset(tmp_path / "data"), tmp_path / "run"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"""
kind: train
run: student
model: {{name: tsm_resnet18, frames: 2}}
data: {{root: {data}, size: 16, resize: 18, frame_stride: 2, eval_clips: 1, batch_size: 4, cache: memory}}
optim: {{name: sgd, lr: 0.01}}
epochs: 1
threads: 1
progress: false
""")
    first = cli("train", "--config", cfg, "--out", run, cwd=elsewhere)
    assert first.returncode == 0, first.stderr[-3000:]
    best, last = (torch.load(run / n, weights_only=True) for n in ("best.pt", "last.pt"))
    assert {"optimizer_state", "scheduler_state", "rng_state", "history"} <= set(last)
    assert not {"optimizer_state", "scheduler_state", "scaler_state", "rng_state", "history"} & set(best)
    assert {"model_state", "config", "input_spec", "model_name", "epoch", "class_names"} <= set(best)
    # SGD momentum is one more copy of the weights: best.pt is about half of last.pt
    assert (run / "best.pt").stat().st_size < 0.6 * (run / "last.pt").stat().st_size

    # resume still works from last.pt; --keep best leaves only best.pt
    resumed = cli("train", "--config", cfg, "--out", run, "--resume", run / "last.pt", "--set", "epochs=2",
                  "--keep", "best", cwd=elsewhere)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout and not (run / "last.pt").exists() and (run / "best.pt").is_file()
    assert json.loads((run / "summary.json").read_text())["checkpoints"] == {"best.pt": str(run / "best.pt")}

    # (in-process: the CLI turns this CheckpointError into one line and exit 2 like the others here)
    from soccerkd.config import load_config
    from soccerkd.errors import CheckpointError
    from soccerkd.train.config import TrainConfig
    from soccerkd.train.runner import read_resume_checkpoint

    with pytest.raises(CheckpointError, match=r"holds weights only .* resume from the run's last\.pt") as err:
        read_resume_checkpoint(run / "best.pt", load_config(TrainConfig, cfg))
    assert f"--set model.weights={run / 'best.pt'}" in str(err.value)

    # evaluate: ./runs/eval/<run folder>-best under the working directory, nothing beside the checkpoint
    before = sorted(p.name for p in run.iterdir())
    ev = cli("evaluate", "--checkpoint", run / "best.pt", "--data", data, "--split", "test", cwd=elsewhere)
    assert ev.returncode == 0, ev.stderr[-3000:]
    out = elsewhere / "runs" / "eval" / "run-best"
    assert (out / "metrics_test.json").is_file() and (out / "confusion_test.png").is_file()
    assert sorted(p.name for p in run.iterdir()) == before


def test_corrupt_checkpoint_is_one_line_without_torch_advice(tmp_path, elsewhere):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04 half a zip")
    line = user_error(cli("evaluate", "--checkpoint", bad, "--data", tmp_path, cwd=elsewhere))
    assert f"checkpoint '{bad}' is not a soccerkd checkpoint or is truncated" in line
    assert "re-download it or re-train" in line
    assert "weights_only" not in line and "file an issue" not in line


def test_kd_without_a_teacher_names_the_key_to_set(elsewhere):
    line = user_error(cli("train", "--config", ROOT / "configs/train/synth_kd.yaml", cwd=elsewhere))
    assert "kd.teacher_checkpoint" in line and "only 'soccerkd sweep'" in line
    assert "--set kd.teacher_checkpoint=PATH" in line


def test_data_split_refuses_to_replace_another_manifest(tmp_path, elsewhere):
    data = write_dataset(tmp_path / "data")
    manifest = data / "manifest.json"
    assert cli("data", "split", data, cwd=elsewhere).returncode == 0
    original = manifest.read_text()
    line = user_error(cli("data", "split", data, "--seed", "1", cwd=elsewhere))
    assert str(manifest) in line and "--force" in line
    assert manifest.read_text() == original
    same = cli("data", "split", data, cwd=elsewhere)
    assert same.returncode == 0 and "already holds this split" in same.stderr
    forced = cli("data", "split", data, "--seed", "1", "--force", cwd=elsewhere)
    assert forced.returncode == 0 and f"warning: overwriting manifest {manifest}" in forced.stderr
    assert manifest.read_text() != original


def test_wording_missing_root_one_video_yaml_and_unknown_keys(tmp_path, elsewhere):
    line = user_error(cli("data", "split", tmp_path / "nope", cwd=elsewhere))
    assert "does not exist" in line and "not a directory" not in line
    one = cli("data", "inspect", write_video(tmp_path / "clip.avi"), cwd=elsewhere)
    assert one.returncode == 0, one.stderr[-2000:]
    assert ": 1 video\n" in one.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: stream\nkafka: [1,2\n")
    line = user_error(cli("config", "show", broken, cwd=elsewhere))
    assert "is not valid YAML at line 3, column 1: expected ',' or ']'" in line
    assert "(while parsing a flow sequence at line 2, column 8)" in line
    line = user_error(cli("config", "show", ROOT / "configs/stream/local.yaml", "--set", "batching.foo=1",
                          cwd=elsewhere))
    assert "unknown key(s) batching.foo in section batching; valid keys:" in line


def test_predict_writes_events_timeline_and_overlay_and_json_to_stdout(tmp_path, elsewhere):
    first = write_video(tmp_path / "a.avi", frames=30, size=(64, 48))
    second = write_video(tmp_path / "other" / "a.avi", frames=30, size=(64, 48), colour=1)
    # thresholds at 0: every window is part of an event, so there is something to check
    proc = cli("predict", first, second, "--json", "--out", "out", "--set", "smoothing.on_threshold=0",
               "--set", "smoothing.off_threshold=0", "--set", "smoothing.min_windows=1", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events and {e["camera_id"] for e in events} == {"a"}
    assert all(e["label"] in CLASSES and e["model_name"] and e["event_id"] for e in events)
    assert re.search(r"a\.avi: \d+ events? .*in 30 frames", proc.stderr)   # the summary goes to stderr
    for name in ("a", "a-2"):
        folder = elsewhere / "out" / name
        assert (folder / "timeline.png").stat().st_size > 0 and (folder / "overlay.mp4").stat().st_size > 0
        assert all(json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines())
    assert (elsewhere / "out" / "a" / "events.jsonl").read_text() + (elsewhere / "out" / "a-2" / "events.jsonl").read_text() \
        == proc.stdout

    plain = cli("predict", "--checkpoint", "demo", "--no-video", "--no-progress", first, cwd=elsewhere)
    assert plain.returncode == 0, plain.stderr[-3000:]
    folder = elsewhere / "runs" / "predict" / "a"
    assert (folder / "events.jsonl").is_file() and (folder / "timeline.png").is_file()
    assert not (folder / "overlay.mp4").exists()
    assert re.search(r"a\.avi: \d+ events? .*in 30 frames", plain.stdout)


def test_predict_bad_inputs_are_one_line(tmp_path, elsewhere):
    line = user_error(cli("predict", tmp_path / "missing.mp4", cwd=elsewhere))
    assert f"video '{tmp_path / 'missing.mp4'}' does not exist" in line
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video")
    line = user_error(cli("predict", junk, cwd=elsewhere))
    assert str(junk) in line and "cannot open video" in line
    line = user_error(cli("predict", "--checkpoint", "nope.pt", write_video(tmp_path / "ok.avi"), cwd=elsewhere))
    assert "checkpoint 'nope.pt' does not exist" in line and "'demo'" in line


def test_docstring_examples_run():
    import doctest

    import soccerkd.wording
    import stream.inference.artifacts

    for module in (soccerkd.wording, stream.inference.artifacts):
        result = doctest.testmod(module)
        assert result.attempted and not result.failed, module.__name__
