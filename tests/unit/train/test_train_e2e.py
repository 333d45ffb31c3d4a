"""End to end on tiny mp4 files the test writes: data adapter, train CLI, evaluate CLI, sweep."""

import json

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from stream.cli import main  # noqa: E402


def _write_videos(root, classes=("dribble", "kick", "run", "walk"), per_class=3, frames=10, size=24):
    rng = np.random.default_rng(0)
    for ci, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for v in range(per_class):
            writer = cv2.VideoWriter(str(root / name / f"v{v}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10,
                                     (size, size))
            for t in range(frames):
                frame = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
                frame[:, :, ci % 3] += 120  # the class shows as a colour cast
                writer.write(frame)
            writer.release()


def test_train_then_evaluate_on_real_video_files(tmp_path, capsys, monkeypatch):
    data, run = tmp_path / "data", tmp_path / "run"
    _write_videos(data)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"""
kind: train
run: student
model: {{name: tsm_resnet18, frames: 2}}
data: {{root: {data}, size: 16, resize: 18, frame_stride: 2, eval_clips: 2, batch_size: 4, cache: memory}}
optim: {{name: adamw, lr: 0.001, weight_decay: 0.0}}
epochs: 1
threads: 1
progress: false
""")
    assert main(["train", "--config", str(cfg), "--out", str(run), "--set", "seed=3"]) == 0
    assert (data / "manifest.json").is_file()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["seed"] == 3 and 0 <= summary["test_video_acc"] <= 1
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)   # evaluate writes under ./runs/eval/ by default
    assert main(["evaluate", "--checkpoint", str(run / "best.pt"), "--data", str(data), "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert "video_acc" in out and "dribble" in out
    assert not (run / "eval_test").exists()
    metrics = json.loads((tmp_path / "runs" / "eval" / "run-best" / "metrics_test.json").read_text())
    assert metrics["num_videos"] == 4 and metrics["num_clips"] == 8
    assert metrics["video_acc"] == pytest.approx(summary["test_video_acc"])
    assert (tmp_path / "runs" / "eval" / "run-best" / "confusion_test.png").is_file()

    # the checkpoint knows its manifest; KD refuses a teacher trained on another split or stride
    from soccerkd.data.splits import manifest_sha256, read_manifest
    from soccerkd.train.checkpoint import load_checkpoint

    assert load_checkpoint(run / "best.pt")["manifest_sha256"] == manifest_sha256(read_manifest(data / "manifest.json"))
    # these videos are not procedural: no generator record, so the demo would not guess a version
    from soccerkd.train.checkpoint import synth_version

    assert synth_version(load_checkpoint(run / "best.pt")) is None

    kd = ["train", "--config", str(cfg), "--set", "run=kd", "--set", f"kd.teacher_checkpoint={run / 'best.pt'}",
          "--set", "max_steps_per_epoch=1"]
    assert main(kd + ["--out", str(tmp_path / "kd_stride"), "--set", "data.frame_stride=1"]) == 2
    assert "frame stride 2 (teacher) vs 1" in capsys.readouterr().err
    assert main(kd + ["--out", str(tmp_path / "kd_split"), "--set", "data.split_seed=5",
                      "--set", f"data.manifest={tmp_path / 'other.json'}"]) == 2
    assert "split manifest" in capsys.readouterr().err
    assert main(kd + ["--out", str(tmp_path / "kd_ok"), "--set", "data.frame_stride=1",
                      "--set", "kd.allow_mismatch=true"]) == 0
    assert load_checkpoint(tmp_path / "kd_ok" / "best.pt")["teacher"]["mismatch"]

    # a teacher logit file shared by two runs: the second run's teacher answers from it
    shared = tmp_path / "teacher_logits.pt"
    kdc = kd + ["--set", "data.augment=false", "--set", f"kd.teacher_cache={shared}"]
    assert main(kdc + ["--out", str(tmp_path / "kd_c1")]) == 0
    assert main(kdc + ["--out", str(tmp_path / "kd_c2")]) == 0
    first, second = (json.loads((tmp_path / r / "metrics.json").read_text())[0] for r in ("kd_c1", "kd_c2"))
    assert first["train_teacher_cache_hit_rate"] == 0.0 and second["train_teacher_cache_hit_rate"] == 1.0
    assert second["train_loss"] == pytest.approx(first["train_loss"], rel=1e-4)

    # issue 25: evaluate refuses a split that holds the checkpoint's training videos
    from soccerkd.data.splits import SplitManifest, write_manifest

    m = read_manifest(data / "manifest.json")
    swapped = SplitManifest(class_names=m.class_names, seed=m.seed, fractions=m.fractions,
                            splits={"train": m.splits["test"], "val": m.splits["val"], "test": m.splits["train"]})
    write_manifest(swapped, tmp_path / "swapped.json")
    assert load_checkpoint(run / "best.pt")["train_videos"] == sorted(p for p, _ in m.splits["train"])
    capsys.readouterr()
    ev = ["evaluate", "--checkpoint", str(run / "best.pt"), "--data", str(data),
          "--manifest", str(tmp_path / "swapped.json"), "--split", "test"]
    assert main(ev) == 2
    err = capsys.readouterr().err
    assert "4 of the 4 videos of split 'test'" in err and "--allow-train-overlap" in err
    assert main(ev + ["--allow-train-overlap"]) == 0
    assert "WARNING 4 of the 4 videos of split 'test'" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(run / "best.pt"), "--data", str(data), "--split", "train"]) == 0
    assert "measure fit, not generalisation" in capsys.readouterr().err


def test_sweep_tabulates_seeds(tmp_path, monkeypatch):
    from soccerkd.train.sweep import run_sweep

    cfg = tmp_path / "kd.yaml"
    cfg.write_text("run: kd\nkd: {teacher_checkpoint: '{sweep}/t/seed{seed}/best.pt', "
                   "teacher_cache: '{sweep}/t/seed{seed}/logits.pt'}\n")
    seen = []

    def fake_train(c):
        seen.append((c.seed, c.kd.alpha, c.kd.temperature, str(c.teacher_path()), str(c.teacher_cache_path())))
        return {"seed": c.seed, "test_video_acc": 0.5 + 0.1 * c.seed, "test_clip_acc": 0.5,
                "test_frame_acc": 0.5, "best_val_video_acc": 0.6}

    report = run_sweep([cfg], seeds=[0, 1], out=tmp_path / "sw", alphas=[0.5, 0.9], temperatures=[4],
                       train=fake_train, log=lambda *_: None)
    assert len(seen) == 4 and seen[1][3] == str(tmp_path / "sw" / "t" / "seed1" / "best.pt")
    assert seen[1][4] == str(tmp_path / "sw" / "t" / "seed1" / "logits.pt")
    row = report["rows"][0]
    assert row["cell"] == "kd/a0.5_T4" and row["n"] == 2
    assert row["test_video_acc"]["mean"] == pytest.approx(0.55)
    assert row["test_video_acc"]["std"] == pytest.approx(np.std([0.5, 0.6], ddof=1))
    table = (tmp_path / "sw" / "sweep.md").read_text()
    assert "55.0 ± 7.1" in table and "kd/a0.9_T4" in table


def test_sweep_shows_test_only_for_the_cell_chosen_on_val_and_checks_reused_configs(tmp_path):
    import dataclasses

    from soccerkd.errors import ConfigError
    from soccerkd.train.config import config_sha256
    from soccerkd.train.sweep import run_sweep

    cfg = tmp_path / "kd.yaml"
    cfg.write_text("run: kd\nkd: {teacher_checkpoint: t.pt}\n")

    def fake_train(c):
        val = {0.5: 0.6, 0.9: 0.7}[c.kd.alpha]
        return {"seed": c.seed, "test_video_acc": 0.4, "test_clip_acc": 0.4, "test_frame_acc": None,
                "best_val_video_acc": val, "config_sha256": config_sha256(c)}

    report = run_sweep([cfg], seeds=[0], out=tmp_path / "sw", alphas=[0.5, 0.9], temperatures=[4],
                       train=fake_train, log=lambda *_: None)
    low, high = report["rows"]
    assert high["chosen_on_val"] and "test_video_acc" in high
    assert not low["chosen_on_val"] and "test_video_acc" not in low and "best_val_video_acc" in low
    table = (tmp_path / "sw" / "sweep.md").read_text()
    assert "(val only)" in table and "(clip model)" in table
    # reuse: same config -> reused; another config in the same place -> refused
    for seed_dir in (tmp_path / "sw").glob("*/seed0"):
        seed_dir.mkdir(parents=True, exist_ok=True)
    for row, alpha in ((low, 0.5), (high, 0.9)):
        d = tmp_path / "sw" / row["cell"] / "seed0"
        d.mkdir(parents=True, exist_ok=True)
        (d / "summary.json").write_text(json.dumps(report["runs"][row["cell"]][0]))
    calls = []
    run_sweep([cfg], seeds=[0], out=tmp_path / "sw", alphas=[0.5, 0.9], temperatures=[4],
              train=lambda c: calls.append(c), log=lambda *_: None)
    assert calls == []
    with pytest.raises(ConfigError, match="another config"):
        run_sweep([cfg], seeds=[0], out=tmp_path / "sw", alphas=[0.5, 0.9], temperatures=[4],
                  overrides=["epochs=3"], train=fake_train, log=lambda *_: None)


def test_cli_user_errors_exit_2_with_the_bad_value(tmp_path, capsys):
    assert main(["train", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("optim: {lr: -1}\n")
    assert main(["train", "--config", str(cfg)]) == 2
    assert "optim.lr" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(tmp_path / "nope.pt"), "--data", str(tmp_path)]) == 2
    assert "nope.pt" in capsys.readouterr().err


def test_resume_is_exact_with_dataloader_workers(tmp_path):
    """Issues 12 and 25: with 2 workers, random clip starts, augmentation and dropout, 1 epoch +
    resume to 3 epochs gives the same weights as 3 uninterrupted epochs. Per-item draws come from
    (seed, epoch, index); the val loader must not draw from the global stream dropout uses (a
    persistent one drew once more after the resume, so epoch 3 differed: issue 25's audit)."""
    import torch

    from soccerkd.train.checkpoint import load_checkpoint

    data = tmp_path / "data"
    _write_videos(data, per_class=4, frames=12)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"""
kind: train
run: student
model: {{name: tsm_resnet18, frames: 2, kwargs: {{dropout: 0.5}}}}
data: {{root: {data}, size: 16, resize: 20, frame_stride: 2, eval_clips: 1, batch_size: 4, num_workers: 2,
        augment: true, cache: memory}}
optim: {{name: sgd, lr: 0.01}}
schedule: {{name: constant}}
threads: 1
progress: false
""")
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "full"), "--set", "epochs=3"]) == 0
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "part"), "--set", "epochs=1"]) == 0
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "part"), "--set", "epochs=3",
                 "--resume", str(tmp_path / "part" / "last.pt")]) == 0
    full_ckpt, part_ckpt = (load_checkpoint(tmp_path / d / "last.pt") for d in ("full", "part"))
    assert full_ckpt["epoch"] == part_ckpt["epoch"] == 3
    full, resumed = full_ckpt["model_state"], part_ckpt["model_state"]
    for k, v in full.items():
        torch.testing.assert_close(resumed[k], v, rtol=0, atol=0, msg=k)
