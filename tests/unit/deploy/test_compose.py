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
    assert {"kafka", "topics", "sample", "ingest", "serve", "serve-gpu", "kafka-exporter", "prometheus",
            "alertmanager", "grafana", "kafka-ui"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert "KRaft" in COMPOSE.read_text() and services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name in ("kafka", "serve", "serve-gpu", "ingest", "prometheus", "alertmanager", "grafana"):
        check = services[name]["healthcheck"]
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, name
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ("serve", "serve-gpu"):
        deps = services[name]["depends_on"]
        assert deps["kafka"]["condition"] == "service_healthy"
        assert deps["topics"]["condition"] == "service_completed_successfully"
        assert "/healthz" in " ".join(services[name]["healthcheck"]["test"])
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
    ingest = services["ingest"]["depends_on"]
    assert ingest["topics"]["condition"] == ingest["sample"]["condition"] == "service_completed_successfully"
    for name in ("kafka-exporter", "kafka-ui"):
        assert services[name]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_plain_up_needs_no_profile_and_no_input() -> None:
    """`docker compose up` with no profile and no variable starts the whole path: a sample the
    project renders, ingest with metrics, serve with the shipped demo student (audit finding 3)."""
    services = compose()["services"]
    default = {name for name, svc in services.items() if not svc.get("profiles")}
    assert default == {"kafka", "topics", "sample", "ingest", "serve", "kafka-exporter", "prometheus",
                       "alertmanager", "grafana", "kafka-ui"}
    script = services["sample"]["command"][0]
    assert "render_match" in script and "/samples/match.mp4" in script
    assert services["sample"]["restart"] == "no"
    assert any(v.endswith(":/samples") for v in services["sample"]["volumes"])
    ingest = services["ingest"]["command"]
    assert ingest[ingest.index("--source") + 1] == "/samples/match.mp4"
    assert any(v.endswith(":/samples:ro") for v in services["ingest"]["volumes"])
    port = ingest[ingest.index("--metrics-port") + 1]
    assert services["ingest"]["environment"]["SOCCERKD_HEALTH_PORT"] == port
    serve = services["serve"]["command"]
    assert "model.checkpoint=${SOCCERKD_CHECKPOINT:-demo}" in serve
    # With no variables set, the rendered config names no host path that a fresh clone lacks.
    named = set(compose()["volumes"])
    for name, svc in services.items():
        for spec in svc.get("volumes", []):
            if not spec.startswith("${"):
                continue
            default = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", spec).split(":", 1)[0]
            assert default in named, f"{name} mounts {spec}: with the variable unset it must be a named volume"


def test_every_port_is_published_on_localhost_by_default() -> None:
    services = compose()["services"]
    published = [(name, p) for name, svc in services.items() for p in svc.get("ports", [])]
    assert len(published) >= 9
    for name, spec in published:
        assert spec.startswith("${BIND:-127.0.0.1}:"), f"{name} publishes {spec!r} on every interface"


def test_stop_grace_covers_the_bounded_shutdown() -> None:
    from soccerkd.config import load_config
    from stream.config import StreamConfig

    cfg = load_config(StreamConfig, COMPOSE_DIR / "stream.yaml")
    k = cfg.kafka
    bound = cfg.liveness_timeout_s + k.commit_timeout_s + 30 + k.commit_timeout_s + 2 * k.commit_timeout_s
    for name in ("serve", "serve-gpu"):
        grace = compose()["services"][name]["stop_grace_period"]
        assert int(grace.rstrip("s")) > bound, f"{name}: stop_grace_period {grace} is not above {bound:g} s"


def test_serve_gpu_profile() -> None:
    services = compose()["services"]
    assert services["serve-gpu"]["profiles"] == ["gpu"]
    (device,) = services["serve-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert "cu1" in services["serve-gpu"]["build"]["args"]["TORCH_INDEX_URL"]
    ports = {p.rsplit(":", 2)[-2] for n in ("serve", "serve-gpu") for p in services[n]["ports"]}
    assert len(ports) == 2, "serve and serve-gpu must publish different host ports"


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
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in cfg["scrape_configs"]}
    port = yaml.safe_load((COMPOSE_DIR / "stream.yaml").read_text())["metrics_port"]
    assert set(jobs["soccerkd"]) == {f"serve:{port}", f"serve-gpu:{port}"}
    ingest = services["ingest"]["command"]
    assert jobs["soccerkd-ingest"] == [f"ingest:{ingest[ingest.index('--metrics-port') + 1]}"]
    exporter = services["kafka-exporter"]["command"]
    assert jobs["kafka-exporter"] == [f"kafka-exporter:{next(a for a in exporter if a.startswith('--web.listen')).rsplit(':', 1)[1]}"]
    assert "--kafka.server=kafka:9092" in exporter
    (am,) = cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am.split(":")[0] == "alertmanager" and f"{am.split(':')[1]}:" in " ".join(services["alertmanager"]["ports"])
    am_cfg = {spec.split(":")[1]: host_path(spec) for spec in services["alertmanager"]["volumes"]}
    receivers = {r["name"] for r in yaml.safe_load(am_cfg["/etc/alertmanager/alertmanager.yml"].read_text())["receivers"]}
    assert {"page", "ticket"} <= receivers
    ui = services["kafka-ui"]["environment"]
    assert ui["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == "kafka:9092" and ui["KAFKA_CLUSTERS_0_READONLY"] == "true"
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
    # The broker-side lag alert and panels name the serve group: the stack's serve must be it.
    alerts = (ROOT / "deploy" / "prometheus" / "alerts.yml").read_text()
    assert f'consumergroup="{cfg.kafka.group_id}"' in alerts
    assert any(v.endswith(":/models:ro") for v in services["serve"]["volumes"])
    # The default checkpoint is the student shipped in the package, found without any mount.
    from stream.inference.artifacts import resolve_checkpoint

    serve = services["serve"]["command"]
    default = serve[serve.index("--set") + 1].split(":-", 1)[1].rstrip("}")
    assert default == "demo" and resolve_checkpoint(default).is_file()


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
    for profiles in ([], ["--profile", "gpu"]):
        out = subprocess.run([*argv, "-f", str(COMPOSE), *profiles, "config", "-q"], capture_output=True,
                             text=True, timeout=60, cwd=ROOT)
        assert out.returncode == 0, out.stdout + out.stderr
