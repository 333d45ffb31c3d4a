"""Static checks of deploy/: every manifest parses, Kubernetes objects are well formed, the
ConfigMap's stream config loads through the service's own config class, the serve arguments
parse with the real CLI, autoscalers agree with topics and config, and every metric the
dashboard and alerts query is one the service exports.

No cluster, Docker engine or promtool is needed; ``kubectl kustomize`` is used when present.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "soccerkd.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"

# Names from the issue (#5), used only while stream/app/metrics.py does not exist yet.
ISSUE_METRICS = {
    "histogram": ["soccerkd_event_latency_seconds", "soccerkd_stage_seconds", "soccerkd_batch_size"],
    "counter": ["soccerkd_frames", "soccerkd_windows", "soccerkd_events", "soccerkd_dropped_frames",
                "soccerkd_dlq"],
    "gauge": ["soccerkd_consumer_lag", "soccerkd_inflight_windows"],
}
SAMPLE_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                   "summary": ("_sum", "_count", "_created"), "gauge": ("",), "info": ("_info",)}
METRIC_RE = re.compile(r"\bsoccerkd_[a-zA-Z0-9_]+")
POD_NAME = "soccerkd-serve-0"


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def manifest_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yaml", ".yml", ".json"})


def load_docs(path: Path) -> list[Any]:
    if path.suffix == ".json":
        return [json.loads(path.read_text())]
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def k8s_objects() -> Iterator[tuple[Path, dict]]:
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in load_docs(path):
            yield path, doc


def find(kind: str, name: str) -> dict:
    found = [d for _, d in k8s_objects() if d.get("kind") == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name} under deploy/k8s, found {len(found)}"
    return found[0]


def serve_container() -> dict:
    sts = find("StatefulSet", "soccerkd-serve")
    (container,) = [c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "serve"]
    return container


def serve_args() -> list[str]:
    return [a.replace("$(POD_NAME)", POD_NAME) for a in serve_container()["args"]]


def gpu_serve_args() -> list[str]:
    """The args the gpu component patches in (a patch replaces the whole list)."""
    doc = yaml.safe_load((K8S / "components" / "gpu" / "kustomization.yaml").read_text())
    (patch,) = [p for p in doc["patches"] if p["target"]["kind"] == "StatefulSet"]
    (container,) = yaml.safe_load(patch["patch"])["spec"]["template"]["spec"]["containers"]
    return [a.replace("$(POD_NAME)", POD_NAME) for a in container["args"]]


def option(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def set_overrides(args: list[str]) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == "--set"]


def topics_env() -> dict[str, str]:
    job = find("Job", "soccerkd-topics")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"]}


def topic_config(text: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in text.split(","))


def embedded_stream_yaml() -> str:
    return find("ConfigMap", "soccerkd-stream-config")["data"]["stream.yaml"]


def stream_values() -> dict:
    """The ConfigMap's stream config as plain YAML values (no schema needed)."""
    return yaml.safe_load(embedded_stream_yaml())


# ---------------------------------------------------------------------------------------------
# Parsing and object identity


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_manifest_parses(path: Path) -> None:
    docs = load_docs(path)
    assert docs, f"{path} holds no document"
    assert all(isinstance(d, dict) for d in docs), f"{path}: every document must be a mapping"


def test_k8s_objects_have_api_version_kind_and_name() -> None:
    objects = list(k8s_objects())
    assert len(objects) >= 10
    for path, doc in objects:
        where = f"{path.relative_to(DEPLOY)} ({doc.get('kind')})"
        assert isinstance(doc.get("apiVersion"), str) and doc["apiVersion"], where
        assert isinstance(doc.get("kind"), str) and doc["kind"], where
        assert isinstance(doc.get("metadata", {}).get("name"), str) and doc["metadata"]["name"], where


def kustomizations() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


@pytest.mark.parametrize("path", kustomizations(), ids=lambda p: str(p.parent.relative_to(DEPLOY)))
def test_kustomization_references_exist(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    assert doc["kind"] in {"Kustomization", "Component"}
    for ref in [*doc.get("resources", []), *doc.get("components", [])]:
        assert (path.parent / ref).exists(), f"{path}: {ref!r} does not exist"
    for patch in doc.get("patches", []):
        assert "patch" in patch or (path.parent / patch["path"]).is_file(), f"{path}: bad patch {patch!r}"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with built-in kustomize) not installed")
@pytest.mark.parametrize("path", [p for p in kustomizations() if yaml.safe_load(p.read_text())["kind"] == "Kustomization"],
                         ids=lambda p: str(p.parent.relative_to(DEPLOY)))
def test_kustomize_builds(path: Path) -> None:
    out = subprocess.run(["kubectl", "kustomize", str(path.parent)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    kinds = {d["kind"] for d in docs}
    if "StatefulSet" in kinds:
        assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {"soccerkd"}
    # Exactly one autoscaler may drive the serve StatefulSet (KEDA owns an HPA of its own).
    assert not {"ScaledObject", "HorizontalPodAutoscaler"} <= kinds


# ---------------------------------------------------------------------------------------------
# Serve workload


def test_serve_probes_ports_and_shutdown_budget() -> None:
    sts = find("StatefulSet", "soccerkd-serve")
    pod = sts["spec"]["template"]
    container = serve_container()
    port = stream_values()["metrics_port"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]}["metrics"] == port
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert int(pod["metadata"]["annotations"]["prometheus.io/port"]) == port
    service = find("Service", "soccerkd-serve")
    assert service["spec"]["ports"][0]["port"] == port
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert pod["spec"]["terminationGracePeriodSeconds"] >= 30
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert Path(option(serve_args(), "--config")).parent.as_posix() in mounts


@pytest.mark.parametrize("variant", ["base", "gpu"])
def test_serve_args_parse_with_the_real_cli(variant: str) -> None:
    from stream.cli import build_parser

    argv = serve_args() if variant == "base" else gpu_serve_args()
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    if "serve" not in sub.choices:
        pytest.skip("the `serve` subcommand is not registered yet")
    args = parser.parse_args(argv)
    assert args.command == "serve"
    assert str(args.config) == option(serve_args(), "--config")


def test_dockerfile_entrypoint_and_sources() -> None:
    text = (DEPLOY / "docker" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["soccerkd"]' in text
    assert re.search(r"^USER 10001", text, re.M), "the image must run as the non-root uid 10001"
    for line in re.findall(r"^COPY (.+)$", text, re.M):
        for src in line.split()[:-1]:
            assert (ROOT / src).exists(), f"Dockerfile copies {src!r}, which is not in the repository"


# ---------------------------------------------------------------------------------------------
# Stream config embedded in the ConfigMap


@pytest.mark.skipif(not has_module("stream.config"), reason="stream/config.py does not exist yet")
def test_configmap_stream_config_validates(tmp_path: Path) -> None:
    from soccerkd.config import load_config
    from stream.config import StreamConfig

    path = tmp_path / "stream.yaml"
    path.write_text(embedded_stream_yaml())
    load_config(StreamConfig, path)
    # The --set overrides of the StatefulSet and of the gpu variant must name real keys too.
    cfg = load_config(StreamConfig, path, overrides=set_overrides(serve_args()))
    assert cfg.kafka.group_instance_id == POD_NAME
    gpu = load_config(StreamConfig, path, overrides=set_overrides(gpu_serve_args()))
    assert gpu.kafka.group_instance_id == POD_NAME
    assert gpu.batching.max_batch > cfg.batching.max_batch


def test_configmap_agrees_with_topics_autoscaling_and_kafka() -> None:
    kafka = stream_values()["kafka"]
    env = topics_env()
    assert kafka["frames_topic"] == env["FRAMES_TOPIC"]
    assert kafka["events_topic"] == env["EVENTS_TOPIC"]
    assert kafka["dlq_topic"] == env["DLQ_TOPIC"]
    assert kafka.get("predictions_topic") in (None, env["PREDICTIONS_TOPIC"])
    # A dead letter carries a whole frame batch: the producer must be allowed to send it.
    assert kafka["max_request_size"] <= int(topic_config(env["DLQ_CONFIG"])["max.message.bytes"])
    assert kafka["max_partition_fetch_bytes"] >= int(topic_config(env["FRAMES_CONFIG"])["max.message.bytes"])
    assert kafka["bootstrap"] == env["BOOTSTRAP"]


# ---------------------------------------------------------------------------------------------
# Topics and autoscaling


def test_topic_settings_fit_large_frames() -> None:
    env = topics_env()
    frames = topic_config(env["FRAMES_CONFIG"])
    assert int(frames["max.message.bytes"]) == 8 * 1024 * 1024
    assert frames["cleanup.policy"] == "delete"
    assert int(frames["retention.ms"]) <= 24 * 3600 * 1000, "frames are live data: keep retention short"
    assert topic_config(env["EVENTS_CONFIG"])["cleanup.policy"] == "delete"
    assert int(topic_config(env["DLQ_CONFIG"])["max.message.bytes"]) > int(frames["max.message.bytes"])
    kafka = find("StatefulSet", "kafka")
    kafka_env = {e["name"]: e.get("value") for e in kafka["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert int(kafka_env["KAFKA_MESSAGE_MAX_BYTES"]) >= int(frames["max.message.bytes"])
    assert kafka["spec"]["template"]["spec"]["containers"][0]["image"].startswith("apache/kafka:4.")


def test_autoscalers_never_exceed_frames_partitions() -> None:
    env = topics_env()
    partitions = int(env["FRAMES_PARTITIONS"])
    keda = find("ScaledObject", "soccerkd-serve")
    hpa = find("HorizontalPodAutoscaler", "soccerkd-serve")
    assert 1 <= keda["spec"]["minReplicaCount"] <= keda["spec"]["maxReplicaCount"] <= partitions
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"] <= partitions
    for target in (keda["spec"]["scaleTargetRef"], hpa["spec"]["scaleTargetRef"]):
        assert (target["kind"], target["name"]) == ("StatefulSet", "soccerkd-serve")


def recording_rules() -> dict[str, str]:
    doc = yaml.safe_load(ALERTS.read_text())
    return {r["record"]: r["expr"] for g in doc["groups"] for r in g["rules"] if "record" in r}


def test_keda_and_hpa_scale_on_the_same_backlog_rules_with_the_same_targets() -> None:
    """Both autoscalers read the service's own backlog (recording rules of alerts.yml), never the
    group's committed offsets, which always include the open-segment hold-back."""
    namespace = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())["namespace"]
    rules = recording_rules()
    keda_targets: dict[str, float] = {}
    for trigger in find("ScaledObject", "soccerkd-serve")["spec"]["triggers"]:
        assert trigger["type"] == "prometheus", "KEDA must not fall back to committed-offset (kafka) lag"
        meta = trigger["metadata"]
        m = re.fullmatch(r'(soccerkd:[a-z_:]+)\{namespace="([^"]+)"\}', meta["query"])
        assert m, f"KEDA query should select one recording rule by namespace: {meta['query']!r}"
        assert m.group(1) in rules, f"{m.group(1)} is not a recording rule of alerts.yml"
        assert m.group(2) == namespace
        assert meta["ignoreNullValues"] == "false"
        keda_targets[m.group(1)] = float(meta["threshold"])
    adapter = yaml.safe_load((DEPLOY / "prometheus" / "prometheus-adapter-rules.yaml").read_text())
    served = {}
    for rule in adapter["rules"]["external"]:
        record = rule["seriesQuery"].split("{", 1)[0]
        assert record in rules and re.fullmatch(f"\\^{re.escape(record)}\\$", rule["name"]["matches"])
        served[rule["name"]["as"]] = record
    hpa_targets = {}
    for metric in find("HorizontalPodAutoscaler", "soccerkd-serve")["spec"]["metrics"]:
        assert metric["type"] == "External" and metric["external"]["target"]["type"] == "AverageValue"
        hpa_targets[served[metric["external"]["metric"]["name"]]] = float(metric["external"]["target"]["averageValue"])
    assert hpa_targets == keda_targets
    assert set(keda_targets) == {"soccerkd:autoscale_messages_behind", "soccerkd:autoscale_windows_waiting"}
    # The windows trigger must sit above what a healthy pod queues (one batch) and below the
    # point where the pod pauses its partitions.
    batching = stream_values()["batching"]
    assert batching["max_batch"] < keda_targets["soccerkd:autoscale_windows_waiting"] < batching["max_pending_windows"]
    # "At the ceiling and still behind" reads the ceiling from the HPA that drives the pods (KEDA's
    # keda-hpa-<ScaledObject> or the fallback's), never a count of exporting processes, and
    # multiplies it by the same per-replica target.
    alerts = {r["alert"]: r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"] if "alert" in r}
    expr = " ".join(str(alerts["SoccerKDAutoscalerAtMax"]["expr"]).split())
    target = keda_targets["soccerkd:autoscale_messages_behind"]
    assert f"> on (namespace) {target:g} * max by (namespace) (kube_horizontalpodautoscaler_spec_max_replicas" in expr
    assert "count" not in expr, "AutoscalerAtMax must not count series (2 pods x 4 workers are 8 series)"
    hpa_names = set(re.findall(r'horizontalpodautoscaler=~"([^"]+)"', expr))
    assert len(hpa_names) == 1, f"one HPA name pattern in AutoscalerAtMax, got {hpa_names}"
    pattern = re.compile(hpa_names.pop())
    keda_hpa = "keda-hpa-" + find("ScaledObject", "soccerkd-serve")["metadata"]["name"]
    fallback = find("HorizontalPodAutoscaler", "soccerkd-serve")["metadata"]["name"]
    for name in (keda_hpa, fallback):
        assert pattern.fullmatch(name), f"AutoscalerAtMax's HPA pattern {pattern.pattern!r} misses {name!r}"
    # The KEDA error alert names the ScaledObject, the broker-side lag alert the serve group.
    assert f'scaledObject="{keda_hpa.removeprefix("keda-hpa-")}"' in str(alerts["SoccerKDAutoscalerErrors"]["expr"])
    group = stream_values()["kafka"]["group_id"]
    assert f'consumergroup="{group}"' in str(alerts["SoccerKDBrokerLagGrowing"]["expr"])


# ---------------------------------------------------------------------------------------------
# Metric names in the dashboard and the alerts


def exported_sample_names() -> set[str]:
    """Sample names the service and the ingester expose: read from stream.app.metrics when it exists."""
    families: list[tuple[str, str]] = []
    if has_module("stream.app.metrics"):
        from prometheus_client import CollectorRegistry

        import stream.app.metrics

        registry = CollectorRegistry()
        stream.app.metrics.Metrics(registry=registry)
        if hasattr(stream.app.metrics, "IngestMetrics"):   # soccerkd ingest --metrics-port
            stream.app.metrics.IngestMetrics(registry)
        if has_module("stream.inference.shadow"):
            import stream.inference.shadow

            stream.inference.shadow.ShadowMetrics(registry)
        if has_module("stream.app.swap"):   # the model hot-swap's
            import stream.app.swap

            stream.app.swap.SwapMetrics(registry)
        families = [(f.type, f.name) for f in registry.collect()]
    else:
        families = [(kind, name) for kind, names in ISSUE_METRICS.items() for name in names]
    return {name + suffix for kind, name in families for suffix in SAMPLE_SUFFIXES[kind]}


def dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    for var in dash["templating"]["list"]:
        query = var.get("query")
        exprs.append(query["query"] if isinstance(query, dict) else str(query or ""))
    return exprs


def rule_exprs() -> list[str]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [str(rule["expr"]) for group in doc["groups"] for rule in group["rules"]]


def adapter_exprs() -> list[str]:
    """The adapter serves recording rules: the raw metrics they are built from count as queried."""
    doc = yaml.safe_load((DEPLOY / "prometheus" / "prometheus-adapter-rules.yaml").read_text())
    rules = recording_rules()
    return [rules[r["seriesQuery"].split("{", 1)[0]] for r in doc["rules"]["external"]]


@pytest.mark.parametrize("source", ["dashboard", "alerts", "adapter"])
def test_queried_metrics_are_exported(source: str) -> None:
    exprs = {"dashboard": dashboard_exprs, "alerts": rule_exprs, "adapter": adapter_exprs}[source]()
    used = {m for e in exprs for m in METRIC_RE.findall(e)}
    assert used, f"no soccerkd_* metric found in the {source} expressions"
    unknown = sorted(used - exported_sample_names())
    assert not unknown, f"{source} queries metrics the service does not export: {unknown}"


def test_dashboard_covers_every_metric_and_is_well_formed() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["title"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dash["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, f"panel {panel['title']!r} overflows the 24-column grid"
        if panel["type"] != "row":
            assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]
            assert panel["datasource"]["uid"] == "${datasource}"
    assert any(v["name"] == "datasource" and v["type"] == "datasource" for v in dash["templating"]["list"])
    text = " ".join(dashboard_exprs())
    bases = {n for names in ISSUE_METRICS.values() for n in names}
    missing = sorted(b for b in bases if b not in text)
    assert not missing, f"dashboard shows nothing of {missing}"


def exported_families() -> set[str]:
    from prometheus_client import CollectorRegistry

    import stream.app.metrics
    import stream.app.swap
    import stream.inference.shadow

    registry = CollectorRegistry()
    stream.app.metrics.Metrics(registry=registry)
    stream.app.metrics.IngestMetrics(registry)
    stream.inference.shadow.ShadowMetrics(registry)
    stream.app.swap.SwapMetrics(registry)
    return {f.name for f in registry.collect()}


def test_every_exported_metric_has_a_panel() -> None:
    """Five counters (commit_failures, fetch_stalls, idle_evictions, stream_epochs,
    timestamp_anomalies) were exported with no panel; now nothing the service exports is unseen."""
    used = {m for e in dashboard_exprs() for m in METRIC_RE.findall(e)}
    used_families = {re.sub(r"_(total|bucket|sum|count|created)$", "", m) for m in used} | used
    missing = sorted(exported_families() - used_families)
    assert not missing, f"exported metrics without a dashboard panel: {missing}"


def test_dashboard_shows_ownership_broker_lag_and_replicas() -> None:
    """The operations panels of issue 26, each on the series its alert reads."""
    exprs = " ".join(" ".join(e.split()) for e in dashboard_exprs())
    group = stream_values()["kafka"]["group_id"]
    for needle in ("up{", "soccerkd_ready{", "soccerkd_assigned_partitions{", "kafka_topic_partitions",
                   f'kafka_consumergroup_lag{{consumergroup="{group}"}}',
                   "kube_horizontalpodautoscaler_status_desired_replicas{",
                   "kube_horizontalpodautoscaler_status_current_replicas{"):
        assert needle in exprs, f"no dashboard panel queries {needle}"
    keda_hpa = "keda-hpa-" + find("ScaledObject", "soccerkd-serve")["metadata"]["name"]
    assert keda_hpa in exprs, f"the replicas panel must select KEDA's HPA {keda_hpa}"
