"""TLS, mutual TLS and SASL for every client, against a local broker of its own with an SSL
listener, a SASL_SSL listener (SCRAM users; certificate made with the JDK's keytool) and an SSL
listener that requires a client certificate (made with openssl, its key encrypted): topics,
ingest, serve and events tail over each, through the real CLI; a plaintext client, a wrong
password, a client without a certificate and a wrong key password are refused; no password
appears in any log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cret-Pw-" + uuid.uuid4().hex[:6]
KEY_PASSWORD_ENV = "SOCCERKD_TEST_KEY_PASSWORD"
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory):
    from stream.dev.broker import LocalBroker
    from stream.errors import BrokerError

    broker = LocalBroker(tmp_path_factory.mktemp("tls-broker"), tls=True, scram_users={"camera-ops": SECRET}, mtls=True)
    try:
        broker.start()
    except BrokerError as exc:
        pytest.fail(f"could not start the TLS/SASL test broker: {exc}", pytrace=False)
    yield broker
    broker.stop()


def soccerkd(*args, env=None, timeout=180):
    full = {k: v for k, v in os.environ.items() if k != "SOCCERKD_SASL_PASSWORD"}   # only what a test gives
    return subprocess.run([sys.executable, "-m", "stream.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=dict(full, **(env or {})))


def video(path: Path) -> Path:
    import cv2

    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (64, 48))
    for i in range(48):
        out.write(np.full((48, 64, 3), 40 if i < 24 else 220, np.uint8))
    out.release()
    return path


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL", "mutual TLS"])
def test_ingest_serve_and_events_over_tls_and_sasl(secure_broker, protocol, tmp_path):
    from soccerkd.config import dump_config
    from stream.config import BatchingConfig, ModelConfig, StreamConfig
    from stream.kafka.config import KafkaConfig
    from stream.core.smoothing import SmoothingConfig
    from stream.core.windowing import WindowConfig

    sasl, mtls = protocol == "SASL_SSL", protocol == "mutual TLS"
    bootstrap = {"SSL": secure_broker.ssl_bootstrap, "SASL_SSL": secure_broker.sasl_ssl_bootstrap,
                 "mutual TLS": secure_broker.mtls_bootstrap}[protocol]
    protocol = "SSL" if mtls else protocol
    flags = ["--bootstrap", bootstrap, "--security-protocol", protocol, "--ssl-cafile", str(secure_broker.ca_file)]
    env = {}
    if mtls:   # the key's password comes from the variable named, in the CLI and in serve's config
        flags += ["--ssl-certfile", str(secure_broker.client_certfile), "--ssl-keyfile",
                  str(secure_broker.client_keyfile), "--ssl-password-env", KEY_PASSWORD_ENV]
        env[KEY_PASSWORD_ENV] = secure_broker.CLIENT_KEY_PASSWORD
    if sasl:
        flags += ["--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "camera-ops"]
        env["SOCCERKD_SASL_PASSWORD"] = SECRET   # the CLI reads it from the environment...
    uid = uuid.uuid4().hex[:6]
    kafka = KafkaConfig(bootstrap=bootstrap, frames_topic=f"f-{uid}", events_topic=f"e-{uid}", dlq_topic=f"d-{uid}",
                        group_id=f"g-{uid}", commit_interval_ms=300, security_protocol=protocol,
                        ssl_cafile=secure_broker.ca_file, sasl_mechanism="SCRAM-SHA-512" if sasl else None,
                        sasl_username="camera-ops" if sasl else None,
                        ssl_certfile=secure_broker.client_certfile if mtls else None,
                        ssl_keyfile=secure_broker.client_keyfile if mtls else None,
                        ssl_password_env=KEY_PASSWORD_ENV if mtls else None)
    if sasl:   # ...and serve from a file named in its config
        (tmp_path / "password").write_text(SECRET + "\n")
        kafka = KafkaConfig(**{**kafka.__dict__, "sasl_password_file": tmp_path / "password"})
    cfg = tmp_path / "serve.yaml"
    dump_config(StreamConfig(kafka=kafka, model=ModelConfig(checkpoint=Path("demo"), device="cpu", amp="none"),
                             windows=WindowConfig(window_stride=4, reorder_tolerance=0, max_fill=0),
                             # any label is "on" (4 classes: the top one has >= 0.25): every window counts
                             smoothing=SmoothingConfig(on_threshold=0.25, off_threshold=0.2, min_windows=1,
                                                       max_windows=2),
                             batching=BatchingConfig(max_batch=8, max_wait_ms=20)), cfg)
    made = soccerkd("topics", "create", "--defaults", "--config", str(cfg), "--partitions", "1", *flags, env=env)
    assert made.returncode == 0, made.stderr[-2000:]
    sent = soccerkd("ingest", "--source", str(video(tmp_path / "cam.avi")), "--camera-id", "cam-tls", "--topic",
                    kafka.frames_topic, "--pacing", "fast", "--no-progress", *flags, env=env)
    assert sent.returncode == 0 and "48 frames" in sent.stdout, sent.stderr[-2000:]
    # serve runs until the first event has been read back over the same listener, then a SIGTERM
    # stops it, which it must answer by publishing, committing and exiting 0
    serve_env = {k: v for k, v in os.environ.items() if k != "SOCCERKD_SASL_PASSWORD"}
    serve_env.update({k: v for k, v in env.items() if k == KEY_PASSWORD_ENV})
    serve = subprocess.Popen([sys.executable, "-m", "stream.cli", "serve", "--config", str(cfg), "--max-seconds", "150"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=serve_env)
    try:
        tail = soccerkd("events", "tail", "--topic", kafka.events_topic, "--from-beginning", "--json", "--max-events",
                        "1", *flags, env=env, timeout=150)
    finally:
        serve.send_signal(signal.SIGTERM)
        out, err = serve.communicate(timeout=90)
    served = subprocess.CompletedProcess(serve.args, serve.returncode, out, err)
    assert served.returncode == 0, served.stderr[-3000:]
    assert "events=0" not in served.stdout, served.stdout + served.stderr[-2000:]
    assert tail.returncode == 0, tail.stderr[-2000:]
    (event,) = [json.loads(line) for line in tail.stdout.splitlines()]
    assert event["camera_id"] == "cam-tls"
    for proc in (made, sent, served, tail):
        for secret in (SECRET, secure_broker.CLIENT_KEY_PASSWORD):
            assert secret not in proc.stdout + proc.stderr, "no password may be logged"
    shown = soccerkd("config", "show", str(cfg))
    assert SECRET not in shown.stdout


def test_plaintext_clients_and_wrong_passwords_are_refused(secure_broker, tmp_path):
    plain = soccerkd("topics", "list", "--bootstrap", secure_broker.ssl_bootstrap, timeout=120)
    assert plain.returncode == 2 and "cannot reach Kafka" in plain.stderr and "Traceback" not in plain.stderr
    wrong = soccerkd("topics", "list", "--bootstrap", secure_broker.sasl_ssl_bootstrap, "--security-protocol",
                     "SASL_SSL", "--ssl-cafile", str(secure_broker.ca_file), "--sasl-mechanism", "SCRAM-SHA-256",
                     "--sasl-username", "camera-ops", env={"SOCCERKD_SASL_PASSWORD": "wrong"}, timeout=120)
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr, wrong.stderr[-2000:]
    missing = soccerkd("topics", "list", "--bootstrap", secure_broker.sasl_ssl_bootstrap, "--security-protocol",
                       "SASL_SSL", "--ssl-cafile", str(secure_broker.ca_file), "--sasl-mechanism", "SCRAM-SHA-256",
                       "--sasl-username", "camera-ops")
    assert missing.returncode == 2 and "SOCCERKD_SASL_PASSWORD" in missing.stderr


def test_mutual_tls_refuses_a_client_without_a_certificate_and_names_a_wrong_key_password(secure_broker):
    base = ["topics", "list", "--bootstrap", secure_broker.mtls_bootstrap, "--security-protocol", "SSL",
            "--ssl-cafile", str(secure_broker.ca_file)]
    anonymous = soccerkd(*base, timeout=120)   # the broker asks for a certificate and gets none
    assert anonymous.returncode == 2 and "cannot reach Kafka" in anonymous.stderr, anonymous.stderr[-2000:]
    assert "give a client certificate (--ssl-certfile, --ssl-keyfile)" in anonymous.stderr
    assert "Traceback" not in anonymous.stderr
    keyed = base + ["--ssl-certfile", str(secure_broker.client_certfile), "--ssl-keyfile",
                    str(secure_broker.client_keyfile)]
    for extra, env, hint in ((["--ssl-password-env", KEY_PASSWORD_ENV], {KEY_PASSWORD_ENV: "not-the-key-password"},
                              f"check the password in ${KEY_PASSWORD_ENV}"),
                             ([], {}, "set kafka.ssl_password_env (--ssl-password-env)")):   # never a terminal prompt
        bad = soccerkd(*keyed, *extra, env=env, timeout=60)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr[-2000:]
        (line,) = [x for x in bad.stderr.splitlines() if x.startswith("soccerkd: error:")]
        assert "kafka.ssl_keyfile" in line and str(secure_broker.client_keyfile) in line and hint in line, line
        assert "not-the-key-password" not in bad.stderr
    good = soccerkd(*keyed, "--ssl-password-env", KEY_PASSWORD_ENV,
                    env={KEY_PASSWORD_ENV: secure_broker.CLIENT_KEY_PASSWORD}, timeout=120)
    assert good.returncode == 0, good.stderr[-2000:]
