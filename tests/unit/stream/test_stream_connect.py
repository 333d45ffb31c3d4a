"""An unreachable broker: one line naming the address, within kafka.connect_timeout_s, exit 2."""

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_serve_without_a_broker_says_so_in_one_line(tmp_path):
    from soccerkd.config import dump_config
    from soccerkd.models import create_model
    from soccerkd.spec import ClipSpec, InputSpec
    from soccerkd.train.checkpoint import save_checkpoint
    from stream.config import ModelConfig, StreamConfig
    from stream.kafka.config import KafkaConfig

    spec = InputSpec(clip=ClipSpec(num_frames=2, frame_stride=1), size=32, resize=32, class_names=("a", "b"))
    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(ckpt, model_name="tsm_resnet18", model_state=create_model(
        "tsm_resnet18", num_classes=2, frames=2, input_spec=spec).state_dict(), input_spec=spec.to_dict(),
        class_names=list(spec.class_names), model_kwargs={})
    cfg = tmp_path / "serve.yaml"
    dump_config(StreamConfig(kafka=KafkaConfig(bootstrap="127.0.0.1:1", connect_timeout_s=2.0),
                             model=ModelConfig(checkpoint=ckpt, device="cpu")), cfg)
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "stream.cli", "serve", "--config", str(cfg)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert "soccerkd: error: cannot reach Kafka at 127.0.0.1:1 (kafka.bootstrap) within 2 s" in proc.stderr
    assert time.monotonic() - t0 < 60


def test_producer_and_consumer_time_out_with_the_address(monkeypatch):
    import pytest

    from stream.kafka.config import KafkaConfig
    from stream.errors import StreamError
    from stream.kafka.connection import make_consumer, make_producer

    cfg = KafkaConfig(bootstrap="127.0.0.1:1", connect_timeout_s=1.0)
    for make in (make_producer, make_consumer):
        t0 = time.monotonic()
        with pytest.raises(StreamError, match=r"cannot reach Kafka at 127\.0\.0\.1:1 \(kafka\.bootstrap\) within 1 s"):
            make(cfg)
        assert time.monotonic() - t0 < 15


def test_over_tls_the_line_also_names_the_tls_settings_a_refused_handshake_points_to(tmp_path):
    import pytest

    from soccerkd.errors import ConfigError
    from stream.kafka.config import KafkaConfig
    from stream.errors import StreamError
    from stream.kafka.connection import make_producer

    cfg = KafkaConfig(bootstrap="127.0.0.1:1", connect_timeout_s=1.0, security_protocol="SSL")
    with pytest.raises(StreamError, match=r"within 1 s: .*speak SSL.*kafka\.ssl_cafile.*give a client certificate"):
        make_producer(cfg)
    with pytest.raises(ConfigError, match=r"kafka\.ssl_keyfile '.*k\.pem' is set without kafka\.ssl_certfile"):
        KafkaConfig(security_protocol="SSL", ssl_keyfile=tmp_path / "k.pem")
    (tmp_path / "c.pem").write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"kafka\.ssl_certfile '.*c\.pem' and its key .* do not load"):
        make_producer(KafkaConfig(bootstrap="127.0.0.1:1", security_protocol="SSL", ssl_certfile=tmp_path / "c.pem"))
