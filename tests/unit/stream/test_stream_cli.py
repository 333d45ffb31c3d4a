"""The service commands' user errors through the real CLI (subprocess): one line, exit code 2,
no traceback (unless --debug); help that shows defaults; --version; log flags."""

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def soccerkd(*args, env=None, timeout=120):
    import os

    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "stream.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def assert_one_line_error(proc, *fragments, code=2):
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("soccerkd: error:")]
    assert len(errors) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def test_version_and_help_show_defaults():
    from stream import __version__

    out = soccerkd("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"soccerkd {__version__}"
    text = " ".join(soccerkd("ingest", "--help").stdout.split())
    for shown in ("--frames-per-batch FRAMES_PER_BATCH frames per message (default: 8)", "(default: realtime)",
                  "--connect-timeout", "$SOCCERKD_BOOTSTRAP", "--log-format {text,json}"):
        assert shown in text, shown
    assert "(default: None)" not in text


def test_an_unreachable_broker_is_one_line_within_the_connect_timeout(tmp_path):
    t0 = time.monotonic()
    proc = soccerkd("events", "tail", "--bootstrap", "127.0.0.1:1", "--connect-timeout", "2")
    assert_one_line_error(proc, "cannot reach Kafka at 127.0.0.1:1 within 2 s", "soccerkd broker start")
    assert time.monotonic() - t0 < 30
    assert "kafka.net" not in proc.stderr   # the client's per-retry chatter stays below WARNING


def test_broken_yaml_names_line_and_column_and_debug_shows_the_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kafka: [1,2\n")
    proc = soccerkd("serve", "--config", str(bad))
    assert_one_line_error(proc, str(bad), "not valid YAML", "line 1, column 8")
    debug = soccerkd("serve", "--config", str(bad), "--debug")
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_a_busy_broker_port_fails_before_the_jvm_starts(tmp_path):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        proc = soccerkd("broker", "start", "--port", str(port), "--state-dir", str(tmp_path / "state"))
    assert_one_line_error(proc, f"port {port} on 127.0.0.1 is already in use", "--port")
    bad_topics = soccerkd("broker", "start", "--port", "0", "--topics", "frames:x", "--state-dir", str(tmp_path))
    assert_one_line_error(bad_topics, "'frames:x'", "integer")


def test_a_busy_metrics_port_names_the_port(tmp_path):
    with socket.socket() as held:
        held.bind(("0.0.0.0", 0))
        held.listen()
        port = held.getsockname()[1]
        proc = soccerkd("serve", "--config", "configs/stream/local.yaml", "--bootstrap", "127.0.0.1:1",
                        "--set", "model.checkpoint=stream/assets/demo_student.pt", "--set", "model.device=cpu",
                        "--metrics-port", str(port))
    assert_one_line_error(proc, f"cannot serve metrics on 0.0.0.0:{port}", "--metrics-port")


def test_json_logs_are_one_object_a_line(tmp_path):
    proc = soccerkd("events", "tail", "--bootstrap", "127.0.0.1:1", "--connect-timeout", "1",
                    "--log-format", "json", "--log-level", "info")
    logged = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    assert any(doc["logger"] == "soccerkd.broker" and "127.0.0.1:1 (from --bootstrap)" in doc["message"]
               for doc in logged), proc.stderr
    assert {"ts", "level", "logger", "message"} <= set(logged[0])


def test_bootstrap_resolution_order(monkeypatch, tmp_path, caplog):
    from stream.cli.broker import DEFAULT_BOOTSTRAP, resolve_bootstrap

    empty_state = tmp_path / "state"
    monkeypatch.delenv("SOCCERKD_BOOTSTRAP", raising=False)
    assert resolve_bootstrap(None, None, state_dir=empty_state) == DEFAULT_BOOTSTRAP
    assert resolve_bootstrap(None, "cfg:1", state_dir=empty_state) == "cfg:1"
    monkeypatch.setenv("SOCCERKD_BOOTSTRAP", "env:2")
    assert resolve_bootstrap(None, "cfg:1", state_dir=empty_state) == "env:2"
    with caplog.at_level("INFO", logger="soccerkd.broker"):
        assert resolve_bootstrap("flag:3", "cfg:1", state_dir=empty_state) == "flag:3"
    assert "flag:3 (from --bootstrap)" in caplog.text


@pytest.mark.parametrize("argv", [["topics", "create"], ["topics", "create", "x", "--partitions", "0"],
                                  ["topics", "create", "x", "--set", "novalue"]])
def test_topic_argument_errors_are_one_line(argv):
    proc = soccerkd(*argv, "--bootstrap", "127.0.0.1:1")
    assert_one_line_error(proc)


def test_config_show_json_is_the_resolved_config():
    proc = soccerkd("config", "show", "configs/stream/local.yaml", "--set", "kafka.frames_topic=cams", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["kafka"]["frames_topic"] == "cams" and doc["model"]["checkpoint"] == "demo"


@pytest.mark.parametrize("debug", [False, True])
def test_a_fail_stop_is_one_line_with_exit_code_1_not_an_unexpected_error(monkeypatch, capsys, debug):
    import argparse

    import stream.cli as cli
    from stream.kafka.publisher import PublishTimeout

    def wedged(args):
        raise PublishTimeout("producer commit did not finish within 30 s (kafka.commit_timeout_s)")

    args = argparse.Namespace(handler=wedged, log_level="info", log_format="text", debug=debug)
    monkeypatch.setattr(cli, "build_parser", lambda: type("P", (), {"parse_args": lambda self, argv: args})())
    if debug:   # --debug shows the traceback instead
        with pytest.raises(PublishTimeout):
            cli.main([])
        return
    assert cli.main([]) == 1
    err = capsys.readouterr().err
    assert err.strip() == ("soccerkd: error: producer commit did not finish within 30 s (kafka.commit_timeout_s); "
                           "failing stop (exit 1), a restart replays from the last commit")


def test_the_learning_commands_take_the_shipped_checkpoint_name(tmp_path, capsys):
    from stream.cli import main

    assert main(["export", "--checkpoint", "demo", "--out", str(tmp_path), "--format", "torchscript",
                 "--batch-sizes", "1"]) == 0
    assert "demo_student.pt" in capsys.readouterr().out and (tmp_path / "model.torchscript.pt").is_file()
