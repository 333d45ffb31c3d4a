"""deploy/compose/compose.yaml: the one-machine stack. The structure is checked from the YAML
(services, start order by healthchecks, GPU profile, mounted files, topics agreeing with the
stream config); `docker-compose config` validates it against Compose's own schema where the
binary is installed (Debian package `docker-compose`; no Docker engine needed). Under CI=true
a missing binary fails the test, as a missing promtool does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE = COMPOSE_DIR / "compose.yaml"


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_stack_has_every_part_with_healthchecks_and_ordered_start() -> None:
    services = compose()["services"]
    assert {"kafka", "topics", "serve", "serve-gpu", "ingest", "prometheus", "grafana"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert "KRaft" in COMPOSE.read_text() and services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name in ("kafka", "serve", "serve-gpu", "prometheus", "grafana"):
        check = services[name]["healthcheck"]
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, name
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ("serve", "serve-gpu"):
        deps = services[name]["depends_on"]
        assert deps["kafka"]["condition"] == "service_healthy"
        assert deps["topics"]["condition"] == "service_completed_successfully"
        assert "/healthz" in " ".join(services[name]["healthcheck"]["test"])
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
    assert services["ingest"]["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_serve_profiles_cpu_and_gpu() -> None:
    services = compose()["services"]
    assert services["serve"]["profiles"] == ["cpu"]
    assert services["serve-gpu"]["profiles"] == ["gpu"]
    assert services["ingest"]["profiles"] == ["sample"]
    (device,) = services["serve-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert "cu1" in services["serve-gpu"]["build"]["args"]["TORCH_INDEX_URL"]


def host_path(spec: str) -> Path | None:
    src = spec.split(":", 1)[0]
    if src.startswith("${") or not src.startswith("."):
        return None  # a named volume or a user-supplied path
    return (COMPOSE_DIR / src).resolve()


def test_mounted_files_exist_and_prometheus_and_grafana_get_the_real_ones() -> None:
    services = compose()["services"]
    for name, svc in services.items():
        for spec in svc.get("volumes", []):
            path = host_path(spec)
            if path is not None:
                assert path.exists(), f"{name} mounts {spec}, which does not exist"
    prom = {spec.split(":")[1]: host_path(spec) for spec in services["prometheus"]["volumes"] if host_path(spec)}
    assert prom["/etc/prometheus/alerts.yml"] == ROOT / "deploy" / "prometheus" / "alerts.yml"
    cfg = yaml.safe_load((COMPOSE_DIR / "prometheus.yml").read_text())
    assert cfg["rule_files"] == ["alerts.yml"]
    targets = cfg["scrape_configs"][0]["static_configs"][0]["targets"]
    port = yaml.safe_load((COMPOSE_DIR / "stream.yaml").read_text())["metrics_port"]
    assert set(targets) == {f"serve:{port}", f"serve-gpu:{port}"}
    graf = {spec.split(":")[1]: host_path(spec) for spec in services["grafana"]["volumes"]}
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/soccerkd.yaml").read_text())
    assert graf[provider["providers"][0]["options"]["path"]] == ROOT / "deploy" / "grafana" / "dashboards"
    ds = yaml.safe_load(graf["/etc/grafana/provisioning/datasources"].joinpath("prometheus.yaml").read_text())
    assert ds["datasources"][0]["url"] == "http://prometheus:9090"


def test_stream_config_loads_and_agrees_with_the_topics_service(tmp_path: Path) -> None:
    from soccerkd.config import load_config
    from stream.config import StreamConfig

    cfg = load_config(StreamConfig, COMPOSE_DIR / "stream.yaml")
    services = compose()["services"]
    assert cfg.kafka.bootstrap == services["topics"]["environment"]["BOOTSTRAP"] == "kafka:9092"
    script = services["topics"]["command"][0]
    created = set(re.findall(r"^create (\S+) ", script, re.M))
    assert {cfg.kafka.frames_topic, cfg.kafka.events_topic, cfg.kafka.dlq_topic} <= created
    assert str(cfg.model.checkpoint).startswith("/models/")
    assert any(v.endswith(":/models:ro") for v in services["serve"]["volumes"])


def test_docker_compose_config_validates() -> None:
    exe = shutil.which("docker-compose")
    argv = [exe] if exe else None
    if argv is None and shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        argv = ["docker", "compose"] if probe.returncode == 0 else None
    if argv is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("docker-compose is missing under CI: install Debian's `docker-compose` (make tools)",
                        pytrace=False)
        pytest.skip("neither docker-compose nor `docker compose` is installed")
    for profiles in ([], ["--profile", "cpu", "--profile", "sample"], ["--profile", "gpu"]):
        out = subprocess.run([*argv, "-f", str(COMPOSE), *profiles, "config", "-q"], capture_output=True,
                             text=True, timeout=60, cwd=ROOT)
        assert out.returncode == 0, out.stdout + out.stderr
