"""Secrets stay out of what the service writes: camera credentials are redacted from every log
line and error, a camera's password can come from the environment or a file, a password typed
where a variable's name belongs is refused without being echoed, and insecure Kafka settings
are warned about once. Every test here greps what it captured for the secrets it used."""

import logging

import pytest

from soccerkd.errors import ConfigError
from stream.app.ingest import IngestOptions, load_cameras, open_source, source_url
from stream.errors import StreamError, redact_url
from stream.kafka.config import KafkaConfig

SECRETS = ("s3cret-Pw", "hunter2 !x", "cam-pa55")


@pytest.fixture(autouse=True)
def no_secret_is_logged(caplog):
    caplog.set_level(logging.DEBUG)
    yield
    for secret in SECRETS:
        assert secret not in caplog.text, caplog.text


def assert_clean(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, text


@pytest.mark.parametrize("text, shown", [
    ("rtsp://admin:s3cret-Pw@10.0.0.5:554/stream1", "rtsp://***@10.0.0.5:554/stream1"),
    ("source 'rtsp://admin:s3cret-Pw@cam/x' failed", "source 'rtsp://***@cam/x' failed"),
    ("HTTP://u:p@w:s3cret-Pw@cam:80 and rtmp://a:cam-pa55@b/c", "HTTP://***@cam:80 and rtmp://***@b/c"),
    ("rtsp://admin@cam/x", "rtsp://***@cam/x"),
    ("rtsp://cam/x?user=a@b and a@b.c and /tmp/a.mp4", "rtsp://cam/x?user=a@b and a@b.c and /tmp/a.mp4"),
])
def test_redact_url_hides_the_userinfo_of_every_url(text, shown):
    assert redact_url(text) == shown


def test_a_reconnect_warning_and_the_give_up_error_never_show_the_camera_password(caplog):
    opts = IngestOptions(source="http://admin:s3cret-Pw@127.0.0.1:1/x", camera_id="cam", max_reconnects=1,
                         reconnect_backoff_s=0.01, reconnect_backoff_max_s=0.01)
    with pytest.raises(StreamError) as info:
        list(open_source(source_url(opts), options=opts).frames)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and "reconnecting" in warnings[0] and "http://***@127.0.0.1:1/x" in warnings[0]
    assert "http://***@127.0.0.1:1/x" in str(info.value)
    assert_clean(str(info.value), *warnings)


def test_the_camera_password_comes_from_the_environment_or_a_file_only_in_memory(monkeypatch, tmp_path):
    monkeypatch.setenv("CAM1_PASSWORD", "cam-pa55")
    opts = IngestOptions(source="rtsp://admin@cam.local:554/live?x=1", camera_id="c", password_env="CAM1_PASSWORD")
    assert source_url(opts) == "rtsp://admin:cam-pa55@cam.local:554/live?x=1"
    assert_clean(opts.source, repr(opts))
    secret_file = tmp_path / "cam.pw"
    secret_file.write_text("p@ss/w%rd\n")
    opts = IngestOptions(source="rtsp://admin@cam/x", camera_id="c", password_file=secret_file)
    assert source_url(opts) == "rtsp://admin:p%40ss%2Fw%25rd@cam/x"   # a URL holds @ / % only encoded
    monkeypatch.delenv("CAM1_PASSWORD")
    with pytest.raises(StreamError, match=r"\$CAM1_PASSWORD, which is not set"):
        source_url(IngestOptions(source="rtsp://admin@cam/x", camera_id="c", password_env="CAM1_PASSWORD"))


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(source="rtsp://cam/x", password_env="PW"), "need a URL source with a user name"),
    (dict(source="clip.mp4", password_env="PW"), "need a URL source with a user name"),
    (dict(source="rtsp://a:s3cret-Pw@cam/x", password_env="PW"), "holds a password already"),
    (dict(source="rtsp://a@cam/x", password_env="hunter2 !x"), "must name an environment variable"),
    (dict(source="rtsp://a@cam/x", password_env="PW", password_file="pw.txt"), "not both"),
])
def test_a_wrong_camera_password_setting_is_refused_without_echoing_it(kwargs, fragment):
    with pytest.raises(StreamError, match=fragment) as info:
        IngestOptions(camera_id="c", **kwargs)
    assert_clean(str(info.value))


def test_a_cameras_file_takes_password_env_per_camera_and_never_echoes_a_url_password(tmp_path):
    path = tmp_path / "cameras.yaml"
    path.write_text("cameras:\n  - {camera_id: a, source: 'rtsp://admin@cam/1', password_env: CAM_A}\n"
                    "  - {camera_id: b, source: 'rtsp://admin@cam/2', options: {password_file: /run/b.pw}}\n")
    a, b = load_cameras(path, {})
    assert a.password_env == "CAM_A" and str(b.password_file) == "/run/b.pw"
    path.write_text("cameras:\n  - {camera_id: a, source: 'rtsp://admin:s3cret-Pw@cam/1', password_env: X}\n"
                    "  - {source: 'rtsp://admin:cam-pa55@cam/2'}\n")
    for text in [path.read_text(), path.read_text().replace("camera_id: a, ", "")]:
        path.write_text(text)
        with pytest.raises(ConfigError) as info:
            load_cameras(path, {})
        assert "rtsp://***@cam/" in str(info.value)
        assert_clean(str(info.value))


def test_the_cli_error_line_and_every_log_line_hide_camera_credentials(monkeypatch, capsys):
    import argparse

    import stream.cli as cli
    from stream.app.logs import JsonFormatter, RedactingFormatter, TEXT_FORMAT

    def failing(args):
        raise StreamError("live source 'rtsp://admin:s3cret-Pw@cam/x' failed and 3 reconnect(s) did not bring it back")

    args = argparse.Namespace(handler=failing, log_level="info", log_format="text", debug=False)
    monkeypatch.setattr(cli, "build_parser", lambda: type("P", (), {"parse_args": lambda self, argv: args})())
    monkeypatch.setattr("stream.app.logs.configure", lambda *a: None)   # leave pytest's log handlers in place
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert "rtsp://***@cam/x" in err
    assert_clean(err)
    try:
        raise OSError("cannot open rtmp://admin:cam-pa55@cam/y")
    except OSError:
        import sys

        record = logging.LogRecord("soccerkd.ingest", logging.WARNING, __file__, 1, "camera %s: %s failed", ("c",
                                   "rtsp://admin:s3cret-Pw@cam/x"), sys.exc_info())
    for inner in (logging.Formatter(TEXT_FORMAT), JsonFormatter()):
        line = RedactingFormatter(inner).format(record)
        assert "rtsp://***@cam/x" in line and "rtmp://***@cam/y" in line
        assert_clean(line)


@pytest.mark.parametrize("field", ["sasl_password_env", "ssl_password_env"])
def test_a_password_typed_where_the_variable_name_belongs_is_refused_without_echoing_it(field):
    with pytest.raises(ConfigError, match=f"kafka.{field} must name an environment variable") as info:
        KafkaConfig(**{field: "hunter2 !x"})
    assert "10 characters" in str(info.value)
    assert_clean(str(info.value))
    assert KafkaConfig(**{field: "MY_KAFKA_PW"})


def test_config_show_masks_password_values_and_its_errors_do_not_echo_them(tmp_path):
    from soccerkd.config import mask_secrets

    from tests.unit.stream.test_stream_cli import assert_one_line_error, soccerkd

    assert mask_secrets({"kafka": {"sasl_password_env": "SOCCERKD_SASL_PASSWORD", "sasl_password_file": "/run/pw",
                                   "ssl_password_env": None, "ssl_password": "s3cret-Pw"},
                         "cameras": [{"password": "cam-pa55", "source": "x"}]}) == \
        {"kafka": {"sasl_password_env": "SOCCERKD_SASL_PASSWORD", "sasl_password_file": "/run/pw",
                   "ssl_password_env": None, "ssl_password": "***"},
         "cameras": [{"password": "***", "source": "x"}]}
    for value in ["'hunter2 !x'", "12345"]:   # a string that names no variable; a value of the wrong type
        proc = soccerkd("config", "show", "configs/stream/local.yaml", "--set", f"kafka.sasl_password_env={value}")
        assert_one_line_error(proc, "kafka.sasl_password_env")
        assert_clean(proc.stdout, proc.stderr)
        assert "12345" not in proc.stderr
    proc = soccerkd("config", "show", "configs/stream/local.yaml", "--set", "kafka.sasl_password_env=CAM_PW")
    assert proc.returncode == 0 and "sasl_password_env: CAM_PW" in proc.stdout, proc.stderr


def test_insecure_kafka_settings_are_warned_about_once_a_process(monkeypatch, caplog, tmp_path):
    from stream.kafka import connection

    monkeypatch.setattr(connection, "_warned", set())
    password = SECRETS[0]   # not spelled out on the line below: a warning raised there prints that line
    monkeypatch.setenv("SK_TEST_SASL_PW", password)
    plain = KafkaConfig(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_username="svc",
                        sasl_password_env="SK_TEST_SASL_PW")
    for _ in range(3):   # every client of a command builds its security arguments
        assert connection.client_security(plain)["sasl_plain_password"] == password
    scram = KafkaConfig(security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256", sasl_username="svc",
                        sasl_password_env="SK_TEST_SASL_PW")
    connection.client_security(scram)
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here")
    no_hostname = KafkaConfig(security_protocol="SSL", ssl_cafile=ca, ssl_check_hostname=False)
    connection.client_security(no_hostname)
    connection.client_security(no_hostname)
    connection.client_security(KafkaConfig(security_protocol="SSL", ssl_cafile=ca))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "soccerkd.kafka"]
    assert len(warnings) == 2, [r.getMessage() for r in warnings]
    assert "clear text" in warnings[0].getMessage() and "ssl_check_hostname is false" in warnings[1].getMessage()
