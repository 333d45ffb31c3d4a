"""The compose stack's own commands and configs, run as local processes (no container engine here):
a Kafka of its own with the topics the `topics` service creates, the `sample` service's script
(render_match into a folder, twice: the second run renders nothing), `ingest` and `serve` with
the arguments compose.yaml gives them, and Debian's Prometheus and Alertmanager with
compose/prometheus.yml and compose/alertmanager.yml, their targets pointed at those processes.

It shows that a plain `docker compose up` has what it needs to reach events and a filled
dashboard with no input: the shipped demo student classifies the rendered match, events reach
the events topic, every dashboard query of the scraped jobs returns data, and Prometheus
delivers to the Alertmanager. What it cannot show: the images, the containers' networking, the
named volumes' ownership, Grafana, kafka-ui and kafka-exporter (deploy/README.md section 2).

Without the `prometheus`/`prometheus-alertmanager` binaries it skips on a workstation and fails
under CI=true.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from kafka_setup import private_broker
from prometheus_setup import get_json, need, query

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "deploy" / "compose"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "soccerkd.json"
NOT_RUN_HERE = re.compile(r"\b(kafka_|kube_|keda_|soccerkd_shadow_)")


def defaults(text: str) -> str:
    """Compose's ${VAR:-default} with every variable unset, as on a fresh clone, and $$ as $."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", text).replace("$$", "$")


def test_compose_commands_reach_events_dashboard_and_alertmanager(tmp_path: Path) -> None:
    from kafka import KafkaConsumer

    from stream.dev.broker import free_port

    prometheus, alertmanager = need("prometheus"), need("prometheus-alertmanager")
    services = yaml.safe_load(defaults((COMPOSE_DIR / "compose.yaml").read_text()))["services"]
    procs: list[subprocess.Popen] = []

    def start(name: str, argv: list[str], **kw) -> subprocess.Popen:
        log = open(tmp_path / f"{name}.log", "w")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"),
                                **kw)
        procs.append(proc)
        return proc

    def logs(name: str) -> str:
        return (tmp_path / f"{name}.log").read_text()[-3000:]

    broker = private_broker(tmp_path / "broker")
    try:
        # topics: what the `topics` service's script creates, CAMERAS at its default.
        cameras = int(services["topics"]["environment"]["CAMERAS"])
        created = {}
        for name, parts, opts in re.findall(r'^create (\S+) "?([^" ]+)"? "([^"]*)"', services["topics"]["command"][0], re.M):
            config = dict(kv.split("=", 1) for kv in re.findall(r"--config (\S+)", opts))
            created[name] = cameras if parts == "$CAMERAS" else int(parts)
            broker.create_topic(name, created[name], config=config)
        assert created == {"frames": 4, "events": 4, "frames-dlq": 1}

        # sample: the script verbatim, its volume a folder here; a second run renders nothing.
        samples = tmp_path / "samples"
        samples.mkdir()
        script = services["sample"]["command"][0].replace("/samples", str(samples))
        t0 = time.monotonic()
        first = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
        render_s = time.monotonic() - t0
        assert first.returncode == 0 and "rendered" in first.stdout, first.stdout + first.stderr
        again = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and "exists" in again.stdout, again.stdout + again.stderr
        truth = json.loads((samples / "match.json").read_text())

        # ingest and serve: compose's arguments, with the compose hostnames and ports mapped here.
        ingest_port, serve_port = free_port(), free_port()
        ingest_args = [a.replace("kafka:9092", broker.bootstrap).replace("/samples", str(samples))
                       for a in services["ingest"]["command"]]
        ingest_args[ingest_args.index("--metrics-port") + 1] = str(ingest_port)
        start("ingest", [sys.executable, "-m", "stream.cli", *ingest_args, "--metrics-bind", "127.0.0.1"], cwd=ROOT)
        serve_args = list(services["serve"]["command"])
        assert serve_args[:3] == ["serve", "--config", "/etc/soccerkd/stream.yaml"]
        serve_args[2] = str(COMPOSE_DIR / "stream.yaml")
        start("serve", [sys.executable, "-m", "stream.cli", *serve_args, "--set", f"kafka.bootstrap={broker.bootstrap}",
                        "--set", f"metrics_port={serve_port}", "--set", "metrics_bind=127.0.0.1"], cwd=ROOT)

        # Alertmanager and Prometheus with the compose configs.
        am_port = free_port()
        start("alertmanager", [alertmanager, f"--config.file={COMPOSE_DIR / 'alertmanager.yml'}",
                               f"--storage.path={tmp_path / 'am'}", f"--web.listen-address=127.0.0.1:{am_port}",
                               "--cluster.listen-address="])
        prom_dir = tmp_path / "prom"
        prom_dir.mkdir()
        config = yaml.safe_load((COMPOSE_DIR / "prometheus.yml").read_text())
        config["global"].update(scrape_interval="1s", evaluation_interval="1s")
        jobs = {j["job_name"]: j for j in config["scrape_configs"]}
        assert set(jobs) == {"soccerkd", "soccerkd-ingest", "kafka-exporter"}
        jobs["soccerkd"]["static_configs"][0]["targets"] = [f"127.0.0.1:{serve_port}"]   # serve-gpu: not run
        jobs["soccerkd-ingest"]["static_configs"][0]["targets"] = [f"127.0.0.1:{ingest_port}"]
        config["scrape_configs"] = [jobs["soccerkd"], jobs["soccerkd-ingest"]]   # kafka-exporter: not run here
        assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
        config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{am_port}"]
        (prom_dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        shutil.copy(ROOT / "deploy" / "prometheus" / "alerts.yml", prom_dir / "alerts.yml")
        web = free_port()
        base = f"http://127.0.0.1:{web}"
        start("prometheus", [prometheus, "--config.file=prometheus.yml", f"--storage.tsdb.path={prom_dir / 'data'}",
                             f"--web.listen-address=127.0.0.1:{web}"], cwd=prom_dir)

        # Wait for events from the demo student on the rendered match, scraped.
        t_start = time.monotonic()
        deadline = t_start + 150
        while True:
            for name, proc in zip(("ingest", "serve"), procs[:2]):
                assert proc.poll() is None, f"{name} exited {proc.returncode}:\n{logs(name)}"
            try:
                ready = query(base, "sum(soccerkd_events_total) > 0") and \
                    query(base, "sum(soccerkd_ingest_frames_total) > 0") and \
                    query(base, "sum(soccerkd_assigned_partitions) == 4")
            except OSError:
                ready = False
            if ready:
                break
            assert time.monotonic() < deadline, f"no events scraped in 150 s\nserve:\n{logs('serve')}\ningest:\n{logs('ingest')}"
            time.sleep(1)
        first_event_s = time.monotonic() - t_start
        time.sleep(3)

        dash = json.loads(DASHBOARD.read_text())
        exprs = [t["expr"].replace("$__rate_interval", "30s").replace('"$job"', '".+"').replace('"$instance"', '".+"')
                 for p in dash["panels"] for t in p.get("targets", [])]
        asked = [e for e in exprs if not NOT_RUN_HERE.search(e)]
        empty = [e for e in asked if not query(base, e)]
        assert not empty, f"dashboard queries without data on the compose stack's jobs: {empty}"
        targets = get_json(f"{base}/api/v1/targets")["data"]["activeTargets"]
        assert sorted((t["labels"]["job"], t["health"]) for t in targets) == [("soccerkd", "up"), ("soccerkd-ingest", "up")]
        assert {t["labels"]["deployment"] for t in targets} == {"compose"}
        active = get_json(f"{base}/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
        assert [a["url"] for a in active] == [f"http://127.0.0.1:{am_port}/api/v2/alerts"]
        assert get_json(f"http://127.0.0.1:{am_port}/api/v2/status")["cluster"]["status"] in {"disabled", "ready"}

        reader = KafkaConsumer("events", bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
                               consumer_timeout_ms=5000, group_id=None)
        # ingest loops the sample, so a student that emits an event every few seconds never leaves the
        # topic idle for consumer_timeout_ms: read for a bounded time, not until idle
        events, stop_at = [], time.monotonic() + 20
        for r in reader:
            events.append(json.loads(r.value))
            if time.monotonic() > stop_at:
                break
        reader.close()
        assert events and {e["camera_id"] for e in events} == {"cam1"}
        labels = {s["label"] for s in truth["segments"]}
        assert {e["label"] for e in events} <= labels
        print(f"\n[compose] sample rendered in {render_s:.1f} s ({truth['num_frames']} frames); first event scraped "
              f"{first_event_s:.1f} s after ingest and serve started; {len(events)} events "
              f"({sorted({e['label'] for e in events})}); {len(asked)} of {len(exprs)} dashboard queries asked, all with data")
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
        for proc in reversed(procs):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        broker.stop()
