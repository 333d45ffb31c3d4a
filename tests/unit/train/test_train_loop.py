import json

import torch

from soccerkd.config import load_config
from soccerkd.kd import DistillationTask
from soccerkd.train.checkpoint import load_checkpoint
from soccerkd.train.config import TrainConfig
from soccerkd.train.loop import evaluate, train_one_epoch
from soccerkd.train.runner import lr_factor, run_training

from train_fakes import CLASSES, TinyClipNet, ToyClips, tiny_factory, toy_splits


def _cfg(tmp_path, *extra):
    return load_config(TrainConfig, None, [
        "model.name=tiny", "model.frames=4", "data.size=8", "data.resize=8", "data.batch_size=6",
        "optim.lr=0.05", "progress=false", "threads=1", f"out_dir={tmp_path}", *extra])


def _quiet(*_):
    pass


def test_a_few_steps_decrease_the_loss():
    torch.manual_seed(0)
    model = TinyClipNet()
    loader = torch.utils.data.DataLoader(ToyClips(12, 1), batch_size=12)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    task = DistillationTask(model)
    first = train_one_epoch(task, loader, opt, progress=False)
    for _ in range(4):
        last = train_one_epoch(task, loader, opt, progress=False)
    assert last["loss"] < first["loss"]
    assert set(first) >= {"loss", "task", "acc", "steps", "clips"}
    m = evaluate(model, loader, class_names=CLASSES, progress=False, frames_per_clip=4)
    assert 0.0 <= m["video_acc"] <= 1.0 and len(m["confusion_matrix"]) == 3


def test_kd_keeps_teacher_frozen():
    torch.manual_seed(0)
    teacher, student = TinyClipNet(), TinyClipNet()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    loader = torch.utils.data.DataLoader(ToyClips(6, 1), batch_size=3)
    task = DistillationTask(student, teacher, alpha=0.5, temperature=4.0)
    out = train_one_epoch(task, loader, torch.optim.SGD(student.parameters(), lr=0.1), progress=False)
    assert out["distill"] > 0 and not teacher.training
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_run_writes_artifacts_and_resume_matches_uninterrupted(tmp_path):
    # A constant LR so that a 2-epoch run resumed to 3 epochs follows the 3-epoch run exactly.
    full = run_training(_cfg(tmp_path / "full", "epochs=3", "schedule.name=constant"), datasets=toy_splits, class_names=CLASSES,
                        model_factory=tiny_factory, log=_quiet)
    for name in ("config.yaml", "last.pt", "best.pt", "metrics.json", "metrics.csv", "curves.png",
                 "test_metrics.json", "confusion_test.png", "summary.json"):
        assert (tmp_path / "full" / name).is_file(), name
    ckpt = load_checkpoint(tmp_path / "full" / "last.pt")
    assert ckpt["epoch"] == 3 and ckpt["class_names"] == list(CLASSES)
    assert ckpt["input_spec"]["clip"]["num_frames"] == 4 and ckpt["config"]["epochs"] == 3
    assert 0.0 <= full["test_video_acc"] <= 1.0

    run_training(_cfg(tmp_path / "part", "epochs=2", "schedule.name=constant"), datasets=toy_splits, class_names=CLASSES,
                 model_factory=tiny_factory, log=_quiet)
    part = load_checkpoint(tmp_path / "part" / "last.pt")
    assert part["epoch"] == 2 and part["optimizer_state"]["state"]  # momentum buffers saved
    run_training(_cfg(tmp_path / "part", "epochs=3", "schedule.name=constant"), resume=tmp_path / "part" / "last.pt", datasets=toy_splits,
                 class_names=CLASSES, model_factory=tiny_factory, log=_quiet)
    resumed = load_checkpoint(tmp_path / "part" / "last.pt")
    assert resumed["scheduler_state"]["last_epoch"] == 3
    assert resumed["epoch"] == 3 and [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    for k, v in ckpt["model_state"].items():
        torch.testing.assert_close(resumed["model_state"][k], v, msg=k)
    history = json.loads((tmp_path / "part" / "metrics.json").read_text())
    assert history[2]["lr"] == ckpt["history"][2]["lr"]


def test_lr_schedules(tmp_path):
    cos = _cfg(tmp_path, "epochs=4", "schedule.name=cosine")
    assert [round(lr_factor(cos, e), 4) for e in range(4)] == [1.0, 0.8536, 0.5, 0.1464]
    step = _cfg(tmp_path, "epochs=5", "schedule.name=step", "schedule.step_size=2", "schedule.warmup_epochs=1")
    assert [round(lr_factor(step, e), 4) for e in range(5)] == [0.5, 1.0, 1.0, 0.1, 0.1]
