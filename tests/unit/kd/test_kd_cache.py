"""Teacher logits by clip content (soccerkd.kd.cache): digests, the task's lookups, the shared file."""

import torch

from soccerkd.kd import DistillationTask
from soccerkd.kd.cache import TeacherLogitCache, clip_digests


class Counting(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3, 4)
        self.calls = 0

    def forward(self, x):
        self.calls += x.shape[0]
        return self.fc(x.mean(dim=(2, 3, 4)))


def test_digests_follow_content_dtype_and_shape():
    a = torch.randn(3, 3, 2, 4, 4)
    d = clip_digests(a)
    assert len(set(d)) == 3 and clip_digests(a.clone()) == d
    b = a.clone()
    b[1, 0, 0, 0, 0] += 1e-6
    assert clip_digests(b)[1] != d[1] and clip_digests(b)[0] == d[0]
    assert clip_digests(a.double())[0] != d[0]
    assert clip_digests(a.reshape(3, 3, 4, 2, 4))[0] != d[0]


def test_task_runs_the_teacher_once_per_distinct_clip():
    torch.manual_seed(0)
    task = DistillationTask(Counting(), Counting(), alpha=0.5, temperature=2.0, cache_teacher=True).train()
    clips, target = torch.randn(4, 3, 2, 4, 4), torch.tensor([0, 1, 2, 3])
    first = task(clips, target)
    assert task.teacher.calls == 4 and task.cache_size == 4
    again = task(clips[[3, 1]], target[[3, 1]])
    assert task.teacher.calls == 4   # both from the cache
    with torch.no_grad():
        fresh = task.teacher(clips[[3, 1]])
    torch.testing.assert_close(task.teacher_logits(clips[[3, 1]]), fresh)
    assert task.cache.take_hit_rate() == 4 / 8 and task.cache.take_hit_rate() == 0.0
    assert first["distill"].item() > 0 and again["distill"].item() > 0


def test_the_file_is_shared_merged_and_refused_for_another_teacher(tmp_path):
    path = tmp_path / "logits.pt"
    one = TeacherLogitCache(teacher_sha256="aa", path=path)
    keys = clip_digests(torch.randn(3, 3, 2, 4, 4))
    one.put(keys[0], torch.tensor([1.0, 2.0]))
    one.put("an-id", torch.tensor([0.0, 0.0]))     # caller ids stay in memory only
    assert one.sync() == 2 and path.is_file()
    two = TeacherLogitCache(teacher_sha256="aa", path=path)
    assert keys[0] in two and "an-id" not in two
    torch.testing.assert_close(two.get(keys[0]), torch.tensor([1.0, 2.0]))
    two.put(keys[1], torch.tensor([3.0, 4.0]))
    one.put(keys[2], torch.tensor([5.0, 6.0]))
    two.sync()
    one.sync()                                      # merges two's entry before writing
    assert {keys[0], keys[1], keys[2]} <= set(one)
    assert len(TeacherLogitCache(teacher_sha256="aa", path=path)) == 3
    notes = []
    other = TeacherLogitCache(teacher_sha256="bb", path=path, log=notes.append)
    assert len(other) == 0 and "belongs to teacher aa" in notes[0]
    path.write_bytes(b"torn")
    notes.clear()
    assert len(TeacherLogitCache(teacher_sha256="aa", path=path, log=notes.append)) == 0
    assert "unreadable" in notes[0]
    assert not list(tmp_path.glob(".*.tmp"))
