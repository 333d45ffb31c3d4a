"""DistillationTask: frozen teacher, named terms, plain mode, teacher-logit cache."""

import pytest
import torch
from torch import nn

from soccerkd.kd import DistillationTask, kd_loss


class Tiny(nn.Module):
    """B×C×T×H×W -> B×K with dropout and BN, so train/eval mode changes the output."""

    def __init__(self, k: int = 3) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(3)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(3, k)
        self.calls = 0

    def forward(self, x):
        self.calls += x.shape[0]
        return self.fc(self.drop(self.bn(x.mean(dim=(2, 3, 4)))))


def make(**kw):
    torch.manual_seed(0)
    return DistillationTask(Tiny(), Tiny(), alpha=0.6, temperature=2.0, **kw)


def test_teacher_frozen_and_kept_in_eval():
    task = make()
    task.train()
    assert task.student.training and not task.teacher.training
    assert all(not p.requires_grad for p in task.teacher.parameters())
    assert task.trainable_parameters() == list(task.student.parameters())


def test_terms_match_kd_loss_and_only_student_gets_gradients():
    task = make().train()
    clips, target = torch.randn(4, 3, 2, 4, 4), torch.tensor([0, 1, 2, 0])
    out = task(clips, target)
    assert set(out) == {"total", "task", "distill", "logits"}
    with torch.no_grad():
        t = task.teacher(clips)
    ref = kd_loss(out["logits"], t, target, alpha=0.6, temperature=2.0)
    for key in ("total", "task", "distill"):
        assert out[key].item() == pytest.approx(ref[key].item(), abs=1e-6)
    out["total"].backward()
    assert task.student.fc.weight.grad is not None
    assert task.teacher.fc.weight.grad is None


def test_plain_mode_is_cross_entropy():
    torch.manual_seed(0)
    task = DistillationTask(Tiny(), None).eval()
    clips, target = torch.randn(4, 3, 2, 4, 4), torch.tensor([0, 1, 2, 0])
    out = task.step(clips, target)
    assert out["total"].item() == pytest.approx(nn.functional.cross_entropy(out["logits"], target).item())
    assert out["distill"].item() == 0.0


def test_teacher_cache_reuses_logits_by_clip_id():
    task = make(cache_teacher=True).train()
    clips, target = torch.randn(3, 3, 2, 4, 4), torch.tensor([0, 1, 2])
    first = task.teacher_logits(clips, ["a", "b", "c"])
    assert task.teacher.calls == 3 and task.cache_size == 3
    again = task.teacher_logits(clips[[2, 0]], ["c", "a"])
    assert task.teacher.calls == 3
    torch.testing.assert_close(again, first[[2, 0]])
    task(torch.cat([clips[:1], torch.randn(1, 3, 2, 4, 4)]), target[:2], clip_ids=["a", "d"])
    assert task.teacher.calls == 4 and task.cache_size == 4
