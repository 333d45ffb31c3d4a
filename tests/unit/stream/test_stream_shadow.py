"""The shadow teacher with scripted models: sampling, bounded queue, drops, agreement, confusion,
and that the student side never waits for the teacher."""

from __future__ import annotations

import random
import threading
import time

import pytest
from prometheus_client import CollectorRegistry

from soccerkd.errors import ConfigError
from stream.inference.shadow import ShadowConfig, ShadowMetrics, ShadowRunner

CLASSES = ("kick", "pass", "other")


class ScriptedTeacher:
    """Says ``label_of(window)`` with certainty; optionally blocks until ``gate`` opens."""

    def __init__(self, label_of, classes=CLASSES, gate: threading.Event | None = None, fail: bool = False):
        self.label_of = label_of
        self.classes = classes
        self.gate = gate
        self.fail = fail
        self.calls: list[int] = []

    def predict(self, windows):
        if self.gate is not None:
            self.gate.wait(30)
        if self.fail:
            raise RuntimeError("teacher exploded")
        self.calls.append(len(windows))
        return [[1.0 if c == self.label_of(w) else 0.0 for c in self.classes] for w in windows]


def probs(label: str) -> list[float]:
    return [0.9 if c == label else 0.05 for c in CLASSES]


def runner(teacher, registry, **kw) -> ShadowRunner:
    kw.setdefault("sample_rate", 1.0)
    return ShadowRunner(teacher, student_classes=CLASSES, teacher_classes=teacher.classes,
                        metrics=ShadowMetrics(registry), **kw)


def value(reg: CollectorRegistry, name: str, **labels) -> float | None:
    return reg.get_sample_value(name, labels)


def test_agreement_and_confusion_from_top1_labels() -> None:
    reg = CollectorRegistry()
    # Teacher says "kick" for even windows, "pass" for odd ones; the student always says "kick".
    shadow = runner(ScriptedTeacher(lambda w: "kick" if w % 2 == 0 else "pass"), reg).start()
    try:
        for w in range(10):
            assert shadow.offer(w, probs("kick"))
        shadow.drain()
    finally:
        shadow.close()
    assert value(reg, "soccerkd_shadow_windows_total") == 10
    assert value(reg, "soccerkd_shadow_agreement") == pytest.approx(0.5)
    assert value(reg, "soccerkd_shadow_confusion_total", student="kick", teacher="kick") == 5
    assert value(reg, "soccerkd_shadow_confusion_total", student="kick", teacher="pass") == 5
    assert shadow.agreement == pytest.approx(0.5)


def test_agreement_is_rolling_over_the_last_n_windows() -> None:
    reg = CollectorRegistry()
    shadow = runner(ScriptedTeacher(lambda w: "kick" if w < 4 else "other"), reg, agreement_window=4).start()
    try:
        for w in range(8):
            shadow.offer(w, probs("kick"))
        shadow.drain()
        assert value(reg, "soccerkd_shadow_agreement") == 0.0  # the 4 agreeing windows rolled out
    finally:
        shadow.close()


def test_class_order_may_differ_but_names_must_match() -> None:
    reg = CollectorRegistry()
    teacher = ScriptedTeacher(lambda w: "pass", classes=("other", "pass", "kick"))
    shadow = runner(teacher, reg).start()
    try:
        shadow.offer(0, probs("pass"))
        shadow.drain()
    finally:
        shadow.close()
    assert value(reg, "soccerkd_shadow_agreement") == 1.0
    with pytest.raises(ValueError, match="same classes"):
        runner(ScriptedTeacher(lambda w: "x", classes=("kick", "pass")), CollectorRegistry())


def test_sampling_follows_the_rate() -> None:
    shadow = runner(ScriptedTeacher(lambda w: "kick"), CollectorRegistry(), sample_rate=0.1,
                    queue_size=10_000, rng=random.Random(7))
    taken = sum(shadow.offer(w, probs("kick")) for w in range(5000))
    assert 400 < taken < 600


def test_offer_never_blocks_on_a_slow_teacher_and_counts_queue_drops() -> None:
    reg = CollectorRegistry()
    gate = threading.Event()
    shadow = runner(ScriptedTeacher(lambda w: "kick", gate=gate), reg, queue_size=3, max_batch=1).start()
    try:
        t0 = time.perf_counter()
        results = [shadow.offer(w, probs("kick")) for w in range(50)]
        elapsed = time.perf_counter() - t0
        assert elapsed < 0.5, f"offer waited for the teacher ({elapsed:.2f} s for 50 windows)"
        queued = sum(results)
        assert 3 <= queued <= 4  # the queue, plus the one the worker may already hold
        assert value(reg, "soccerkd_shadow_dropped_total", reason="queue_full") == 50 - queued
    finally:
        gate.set()
        shadow.drain()
        shadow.close()
    assert value(reg, "soccerkd_shadow_windows_total") == queued


def test_busy_service_drops_and_teacher_errors_are_counted_not_raised() -> None:
    reg = CollectorRegistry()
    busy = runner(ScriptedTeacher(lambda w: "kick"), reg, spare=lambda: False)
    assert not busy.offer(0, probs("kick"))
    assert value(reg, "soccerkd_shadow_dropped_total", reason="busy") == 1
    reg2 = CollectorRegistry()
    failing = runner(ScriptedTeacher(lambda w: "kick", fail=True), reg2).start()
    try:
        for w in range(3):
            failing.offer(w, probs("kick"))
        failing.drain()
        assert failing._thread.is_alive()
    finally:
        failing.close()
    assert value(reg2, "soccerkd_shadow_dropped_total", reason="error") == 3
    assert value(reg2, "soccerkd_shadow_windows_total") == 0


def test_metrics_exist_at_zero_and_config_validates() -> None:
    reg = CollectorRegistry()
    ShadowMetrics(reg)
    for reason in ("queue_full", "busy", "error"):
        assert value(reg, "soccerkd_shadow_dropped_total", reason=reason) == 0
    assert value(reg, "soccerkd_shadow_windows_total") == 0
    assert not ShadowConfig().enabled
    assert ShadowConfig(checkpoint="t.pt").enabled
    with pytest.raises(ConfigError, match="sample_rate"):
        ShadowConfig(sample_rate=0)
    with pytest.raises(ConfigError, match="queue_size"):
        ShadowConfig(queue_size=0)


def test_teacher_must_take_the_students_windows_as_they_are() -> None:
    from dataclasses import replace

    from soccerkd.spec import ClipSpec, InputSpec
    from stream.inference.shadow import check_same_input

    student = InputSpec(clip=ClipSpec(num_frames=8, frame_stride=2), size=112, resize=128, class_names=CLASSES)
    check_same_input(student, replace(student, mean=(0.5, 0.5, 0.5), class_names=tuple(reversed(CLASSES))))
    with pytest.raises(ConfigError, match="clip"):
        check_same_input(student, replace(student, clip=ClipSpec(num_frames=16, frame_stride=2)))
    with pytest.raises(ConfigError, match="size"):
        check_same_input(student, replace(student, size=96))
    with pytest.raises(ConfigError, match="classes"):
        check_same_input(student, replace(student, class_names=("kick", "pass")))


def test_shadowed_predictor_returns_the_students_answer_and_offers_each_window() -> None:
    from stream.inference.shadow import ShadowedPredictor

    class Student:
        input_spec = "spec"

        def predict(self, windows):
            return [probs("kick") for _ in windows]

    reg = CollectorRegistry()
    shadow = runner(ScriptedTeacher(lambda w: "pass"), reg).start()
    wrapped = ShadowedPredictor(Student(), shadow)
    try:
        assert wrapped.predict([1, 2, 3]) == [probs("kick")] * 3
        assert wrapped.input_spec == "spec"
        shadow.drain()
    finally:
        shadow.close()
    assert value(reg, "soccerkd_shadow_confusion_total", student="kick", teacher="pass") == 3


def test_torch_teacher_copies_the_window_before_the_student_frees_its_slots() -> None:
    import torch

    from stream.inference.framestore import FrameStore
    from stream.inference.shadow import TorchShadowTeacher

    class Window:
        frames = None

    class Student:
        store = FrameStore(4, device="cpu", capacity=8)

    class Teacher:
        device = torch.device("cpu")
        _scale = 2.0
        _shift = -1.0

        def predict_tensor(self, x):
            self.seen = x.clone()
            return x.mean(dim=(1, 2, 3, 4), keepdim=False).unsqueeze(1).numpy()

    student, teacher = Student(), Teacher()
    slots = student.store.alloc(2)
    for value, slot in zip((10, 20), slots):
        student.store.tensor[slot] = value
    window = Window()
    window.frames = tuple(slots)
    shadow_teacher = TorchShadowTeacher(teacher, student)
    copy = shadow_teacher.prepare(window)
    student.store.release(slots)          # the student is done with them ...
    student.store.tensor[slots] = 255     # ... and the slots are reused
    assert copy.shape == (1, 2, 3, 4, 4)
    shadow_teacher.predict([copy, copy])
    assert teacher.seen.shape == (2, 3, 2, 4, 4)                      # B x C x T x H x W
    assert teacher.seen[:, :, 0].unique().tolist() == [10 * 2.0 - 1.0]  # the teacher's own normalisation
    assert teacher.seen[:, :, 1].unique().tolist() == [20 * 2.0 - 1.0]
