"""``shadow.checkpoint`` in the stream config puts the teacher in shadow behind the student in
``build_service`` (the wiring; the shadow itself is tested in test_stream_shadow.py)."""

from prometheus_client import CollectorRegistry

from stream.app.compose import build_service
from stream.app.metrics import Metrics
from stream.config import StreamConfig
from stream.core.ledger import SourceRef
from stream.core.wire import encode_frame_batch
from stream.dev.checkpoints import tiny_checkpoint
from stream.dev.testing import solid_batch
from stream.inference.shadow import ShadowConfig, ShadowedPredictor


def test_a_shadow_checkpoint_in_the_config_puts_the_teacher_behind_the_student(tmp_path):
    from stream.config import ModelConfig

    cfg = StreamConfig(model=ModelConfig(checkpoint=tiny_checkpoint(tmp_path / "student.pt", 0), device="cpu"),
                       shadow=ShadowConfig(checkpoint=tiny_checkpoint(tmp_path / "teacher.pt", 1), sample_rate=1.0,
                                           device="cpu"))
    registry = CollectorRegistry()
    svc = build_service(cfg, metrics=Metrics(registry))
    try:
        assert isinstance(svc.predictor, ShadowedPredictor) and svc.shadow is not None
        for i, first in enumerate(range(0, 16, 4)):
            svc.pipeline.offer_bytes(encode_frame_batch(solid_batch("c", first, [(90, 90, 90)] * 4, width=40,
                                                                    height=32)), SourceRef("frames", 0, i))
        svc.pipeline.drain()
    finally:
        svc.close()
    assert not svc.shadow._thread.is_alive()
    assert (registry.get_sample_value("soccerkd_shadow_windows_total") or 0) >= 1
    assert registry.get_sample_value("soccerkd_shadow_agreement") == 0.0   # the teacher always disagrees
