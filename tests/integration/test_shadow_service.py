"""The teacher in shadow inside the running service, on the real broker: a scripted student
wrapped in ShadowedPredictor, a scripted teacher that disagrees on known windows, and the shadow
metrics read back from the service's registry."""

from __future__ import annotations

import pytest
from kafka_setup import fresh_kafka_config, serving
from prometheus_client import CollectorRegistry

from stream.config import BatchingConfig, StreamConfig
from stream.core.smoothing import SmoothingConfig
from stream.core.windowing import WindowConfig
from stream.dev.checkpoints import tiny_checkpoint

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


class ScriptedTeacher:
    """Says "red" for windows starting at a multiple of 4, "other" otherwise."""

    class_names = ("other", "red")

    def predict(self, windows):
        return [[0.0, 1.0] if w.start_seq % 4 == 0 else [1.0, 0.0] for w in windows]


def test_shadow_teacher_compares_live_windows(kafka_broker):
    from stream.kafka.connection import make_producer
    from stream.core.wire import encode_frame_batch
    from stream.app.metrics import Metrics
    from stream.app.compose import build_service
    from stream.inference.shadow import ShadowedPredictor, ShadowMetrics, ShadowRunner
    from stream.dev.testing import ScriptedPredictor, solid_batch

    cfg = StreamConfig(
        kafka=fresh_kafka_config(kafka_broker, "shadow"),
        windows=WindowConfig(window_stride=2, reorder_tolerance=0, max_fill=0),
        smoothing=SmoothingConfig(on_threshold=0.6, off_threshold=0.4, min_windows=2, max_windows=4),
        batching=BatchingConfig(max_batch=4, max_wait_ms=20, max_pending_windows=16, resume_pending_windows=4),
        log_every_s=1.0)
    registry = CollectorRegistry()
    student = ScriptedPredictor()
    runner = ShadowRunner(ScriptedTeacher(), student_classes=student.input_spec.class_names,
                          teacher_classes=ScriptedTeacher.class_names, metrics=ShadowMetrics(registry),
                          sample_rate=1.0, queue_size=1000).start()
    service = build_service(cfg, predictor=ShadowedPredictor(student, runner), metrics=Metrics(registry))
    producer = make_producer(cfg.kafka)
    for seq in range(0, 64, 4):  # 64 red frames: the student says "red" for every window
        producer.send(cfg.kafka.frames_topic, key=b"cam", value=encode_frame_batch(solid_batch("cam", seq, [(220, 10, 10)] * 4)))
    producer.flush()
    producer.close()
    try:
        with serving(service, until=lambda: (registry.get_sample_value("soccerkd_windows_total") or 0) >= 31,
                     what="the service did not classify the windows"):
            runner.drain()
    finally:
        runner.close()
    windows = registry.get_sample_value("soccerkd_windows_total")
    value = lambda s, t: registry.get_sample_value("soccerkd_shadow_confusion_total", {"student": s, "teacher": t}) or 0
    assert registry.get_sample_value("soccerkd_shadow_windows_total") == windows == 31  # windows 0, 2, ..., 60
    assert value("red", "red") == 16 and value("red", "other") == 15  # start 0, 4, ..., 60 agree
    assert registry.get_sample_value("soccerkd_shadow_agreement") == pytest.approx(16 / 31)
    assert registry.get_sample_value("soccerkd_shadow_dropped_total", {"reason": "queue_full"}) == 0


def test_torch_teacher_reads_the_students_frames(kafka_broker, tmp_path):
    """Real student and teacher models (the service's own TorchPredictor): the teacher gets its
    windows from copies of the student's frame-store slots, taken before the student frees them."""
    from stream.inference.predictors import TorchPredictor
    from stream.kafka.connection import make_producer
    from stream.core.wire import encode_frame_batch
    from stream.app.metrics import Metrics
    from stream.app.compose import build_service
    from stream.inference.shadow import ShadowConfig, ShadowedPredictor, ShadowRunner
    from stream.dev.testing import solid_batch

    cfg = StreamConfig(
        kafka=fresh_kafka_config(kafka_broker, "shadow-t"),
        windows=WindowConfig(window_stride=2, reorder_tolerance=0, max_fill=0),
        smoothing=SmoothingConfig(on_threshold=0.6, off_threshold=0.4, min_windows=2, max_windows=4),
        batching=BatchingConfig(max_batch=4, max_wait_ms=20, max_pending_windows=16, resume_pending_windows=4),
        log_every_s=1.0)
    student = TorchPredictor.from_checkpoint(tiny_checkpoint(tmp_path / "student.pt", 0), device="cpu", amp="none",
                                             cpu_threads=1)
    registry = CollectorRegistry()
    shadow = ShadowConfig(checkpoint=tiny_checkpoint(tmp_path / "teacher.pt", 1), sample_rate=1.0, queue_size=1000,
                          device="cpu")
    runner = ShadowRunner.from_config(shadow, student=student, registry=registry).start()
    service = build_service(cfg, predictor=ShadowedPredictor(student, runner), metrics=Metrics(registry))
    producer = make_producer(cfg.kafka)
    for seq in range(0, 32, 4):
        producer.send(cfg.kafka.frames_topic, key=b"cam",
                      value=encode_frame_batch(solid_batch("cam", seq, [(220, 10, 10)] * 4, width=40, height=32)))
    producer.flush()
    producer.close()
    try:
        with serving(service, until=lambda: (registry.get_sample_value("soccerkd_windows_total") or 0) >= 15,
                     what="the service did not classify the windows"):
            runner.drain()
    finally:
        runner.close()
        student.close()
    # The student says "kick" (bias 0), the teacher "run" (bias 1): every window disagrees.
    assert registry.get_sample_value("soccerkd_shadow_windows_total") == 15  # windows 0, 2, ..., 28
    assert registry.get_sample_value("soccerkd_shadow_confusion_total", {"student": "kick", "teacher": "run"}) == 15
    assert registry.get_sample_value("soccerkd_shadow_agreement") == 0.0
    assert registry.get_sample_value("soccerkd_shadow_dropped_total", {"reason": "error"}) == 0
