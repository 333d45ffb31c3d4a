"""Every shipped kustomization, rendered by ``kubectl kustomize``, is complete and consistent.

- Every metric a KEDA trigger or HPA metric reads (through the recording rules) is scraped by a
  PodMonitor of the same render, and those recording rules are in a PrometheusRule of the same
  render: followed as the README says, the autoscaler gets a signal (audit finding 2).
- Every metric an alert reads is scraped in the render, or comes from a prerequisite named in
  ``PREREQUISITES`` (and in deploy/README.md).
- terminationGracePeriodSeconds exceeds the service's bounded shutdown for the config the pods
  run with (finding 5), and the windows-waiting target follows the ScaledObject's own rule for
  that config's batching (finding 6, the GPU overlay).

Needs ``kubectl`` (built-in kustomize); without it the tests skip on a workstation and fail
under CI=true, as a missing promtool does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
ADAPTER = ROOT / "deploy" / "prometheus" / "prometheus-adapter-rules.yaml"
OVERLAYS = [K8S, K8S / "overlays" / "gpu", K8S / "overlays" / "hpa"]

# Series that come from outside the rendered stack; deploy/README.md names each as a prerequisite.
PREREQUISITES = {
    "kube_": "kube-state-metrics (kube-prometheus-stack)",
    "keda_": "the KEDA operator's metrics port",
    "soccerkd_ingest_": "soccerkd ingest --metrics-port where the cameras are (not deployed by these overlays)",
    "up": "Prometheus itself",
}
# What kafka-exporter (danielqsj/kafka_exporter, kafka_exporter.go) exposes.
KAFKA_EXPORTER = {
    "kafka_brokers", "kafka_broker_info", "kafka_topic_partitions", "kafka_topic_partition_current_offset",
    "kafka_topic_partition_oldest_offset", "kafka_topic_partition_leader", "kafka_topic_partition_replicas",
    "kafka_topic_partition_in_sync_replica", "kafka_topic_partition_leader_is_preferred",
    "kafka_topic_partition_under_replicated_partition", "kafka_consumergroup_current_offset",
    "kafka_consumergroup_current_offset_sum", "kafka_consumergroup_lag", "kafka_consumergroup_lag_sum",
    "kafka_consumergroup_members",
}
# The final synchronous commit waits up to the consumer's request_timeout_ms, which
# stream.kafka.make_consumer leaves at kafka-python's default.
KAFKA_PYTHON_REQUEST_TIMEOUT_S = 30.0

PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
                "offset", "inf", "nan"}
SAMPLE_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                   "summary": ("_sum", "_count", "_created"), "gauge": ("",), "info": ("_info",)}


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("kubectl is missing under CI: it renders the kustomizations", pytrace=False)
        pytest.skip("kubectl (with built-in kustomize) not installed")
    return path


@lru_cache(maxsize=None)
def render(path: Path) -> tuple[dict, ...]:
    out = subprocess.run([kubectl(), "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"kubectl kustomize {path.relative_to(ROOT)} failed: {out.stderr}"
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d)


def of_kind(docs: tuple[dict, ...], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def metric_names(expr: str) -> set[str]:
    """Metric (and recording rule) names a PromQL expression selects. Strings, label matchers,
    ranges and grouping label lists are removed first; what is left and is not called like a
    function or a PromQL keyword is a series name."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        if m.group(2) is None and m.group(1).lower() not in PROMQL_WORDS:
            names.add(m.group(1))
    return names


def test_metric_names_reads_what_promql_selects() -> None:
    expr = ('sum by (namespace) (rate(soccerkd_frames_total{job="a"}[5m])) == 0 and on (namespace) '
            'soccerkd:autoscale_messages_behind > on (namespace) 25 * max by (namespace) (up{x=~"a|b"})')
    assert metric_names(expr) == {"soccerkd_frames_total", "soccerkd:autoscale_messages_behind", "up"}


@lru_cache(maxsize=None)
def serve_exports() -> frozenset[str]:
    from prometheus_client import CollectorRegistry

    import stream.app.metrics
    import stream.inference.shadow

    registry = CollectorRegistry()
    stream.app.metrics.Metrics(registry=registry)
    stream.inference.shadow.ShadowMetrics(registry)
    return frozenset(f.name + s for f in registry.collect() for s in SAMPLE_SUFFIXES[f.type])


def image_exports(image: str) -> frozenset[str]:
    repo = image.split("@")[0].rsplit(":", 1)[0]
    if repo == "soccerkd":
        return serve_exports()
    if repo == "danielqsj/kafka-exporter":
        return frozenset(KAFKA_EXPORTER)
    return frozenset()


def scraped(docs: tuple[dict, ...]) -> set[str]:
    """Series exposed by the containers a PodMonitor of the render selects, on the port it names."""
    workloads = [d for d in docs if d["kind"] in {"StatefulSet", "Deployment"}]
    names: set[str] = set()
    for monitor in of_kind(docs, "PodMonitor"):
        wanted = monitor["spec"]["selector"]["matchLabels"].items()
        ports = {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]}
        selected = [w for w in workloads if wanted <= w["spec"]["template"]["metadata"]["labels"].items()]
        assert selected, f"PodMonitor {monitor['metadata']['name']} selects no workload of the render"
        for workload in selected:
            assert monitor["metadata"].get("namespace") == workload["metadata"].get("namespace")
            for container in workload["spec"]["template"]["spec"]["containers"]:
                if ports & {p.get("name") for p in container.get("ports", [])}:
                    names |= image_exports(container["image"])
    return names


def recording_rules(docs: tuple[dict, ...]) -> dict[str, str]:
    return {r["record"]: str(r["expr"]) for pr in of_kind(docs, "PrometheusRule")
            for g in pr["spec"]["groups"] for r in g["rules"] if "record" in r}


def alerts(docs: tuple[dict, ...]) -> dict[str, str]:
    return {r["alert"]: str(r["expr"]) for pr in of_kind(docs, "PrometheusRule")
            for g in pr["spec"]["groups"] for r in g["rules"] if "alert" in r}


def raw_series(expr: str, rules: dict[str, str], where: str) -> set[str]:
    """The scraped series behind ``expr``, through the recording rules of the render."""
    out = set()
    for name in metric_names(expr):
        if ":" in name:
            assert name in rules, f"{where} reads the recording rule {name}, which no PrometheusRule of the render defines"
            out |= raw_series(rules[name], rules, f"{where} via {name}")
        else:
            out.add(name)
    return out


def autoscaler_queries(docs: tuple[dict, ...]) -> dict[str, str]:
    queries = {}
    for so in of_kind(docs, "ScaledObject"):
        for i, trigger in enumerate(so["spec"]["triggers"]):
            assert trigger["type"] == "prometheus", trigger
            queries[f"ScaledObject {so['metadata']['name']} trigger {i}"] = trigger["metadata"]["query"]
    adapter = {r["name"]["as"]: r["seriesQuery"] for r in yaml.safe_load(ADAPTER.read_text())["rules"]["external"]}
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        for metric in hpa["spec"]["metrics"]:
            name = metric["external"]["metric"]["name"]
            assert name in adapter, f"HPA metric {name} is not served by prometheus-adapter-rules.yaml"
            queries[f"HPA {hpa['metadata']['name']} metric {name}"] = adapter[name]
    return queries


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: str(p.relative_to(ROOT)))
def test_autoscaler_signal_and_alerts_are_scraped_in_the_same_render(overlay: Path) -> None:
    docs = render(overlay)
    rules = recording_rules(docs)
    have = scraped(docs)
    queries = autoscaler_queries(docs)
    assert queries, f"{overlay.relative_to(ROOT)} ships no autoscaler"
    for where, query in queries.items():
        missing = sorted(raw_series(query, rules, where) - have)
        assert not missing, f"{overlay.relative_to(ROOT)}: {where} reads {missing}, which no PodMonitor scrapes"
    rendered_alerts = alerts(docs)
    assert rendered_alerts, f"{overlay.relative_to(ROOT)} ships no PrometheusRule alerts"
    for name, expr in rendered_alerts.items():
        series = raw_series(expr, rules, name)
        missing = sorted(s for s in series - have if not any(s.startswith(p) for p in PREREQUISITES))
        assert not missing, f"{overlay.relative_to(ROOT)}: alert {name} reads {missing}, which nothing scrapes"
    # Broker-side lag, independent of the pods, is part of every shipped stack.
    assert {"kafka_consumergroup_lag", "kafka_topic_partitions"} <= have


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_check_catches_an_overlay_without_its_podmonitor(overlay: Path) -> None:
    """The audit's case: KEDA without the PodMonitor and PrometheusRule it reads."""
    stripped = tuple(d for d in render(overlay) if d["kind"] not in {"PodMonitor", "PrometheusRule"})
    rules = recording_rules(stripped)
    with pytest.raises(AssertionError, match="no PrometheusRule of the render defines"):
        for where, query in autoscaler_queries(stripped).items():
            raw_series(query, rules, where)


def serve_config(docs: tuple[dict, ...]):
    """The StreamConfig the serve pods of this render run with: ConfigMap plus their --set args."""
    from soccerkd.config import load_config
    from stream.config import StreamConfig

    (sts,) = [d for d in of_kind(docs, "StatefulSet") if d["metadata"]["name"] == "soccerkd-serve"]
    (cm,) = [d for d in of_kind(docs, "ConfigMap") if "stream.yaml" in d.get("data", {})]
    (container,) = [c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "serve"]
    args = [a.replace("$(POD_NAME)", "soccerkd-serve-0") for a in container["args"]]
    overrides = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stream.yaml"
        path.write_text(cm["data"]["stream.yaml"])
        return sts, load_config(StreamConfig, path, overrides=overrides)


def shutdown_bound_s(cfg) -> float:
    """The longest `soccerkd serve` takes from SIGTERM to exit against a slow broker, step by
    step (stream/service.py run() and close(), stream/publisher.py)."""
    k = cfg.kafka
    drain = cfg.liveness_timeout_s   # the waiting windows: one step of work, bounded like any loop step
    settle = k.commit_timeout_s      # producer flush before the final commit
    if k.delivery == "exactly_once":
        final_commit = 2 * k.commit_timeout_s   # send_offsets_to_transaction, commit_transaction
        publisher_close = 3 * k.commit_timeout_s   # abort, flush, producer close
    else:
        final_commit = KAFKA_PYTHON_REQUEST_TIMEOUT_S   # synchronous offset commit
        publisher_close = 2 * k.commit_timeout_s   # flush, producer close
    consumer_close = k.commit_timeout_s   # leaving the group, bounded since 240ba62
    return drain + settle + final_commit + consumer_close + publisher_close


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: str(p.relative_to(ROOT)))
def test_termination_grace_exceeds_the_bounded_shutdown(overlay: Path) -> None:
    sts, cfg = serve_config(render(overlay))
    grace = sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    bound = shutdown_bound_s(cfg)
    assert bound == 210, f"the shutdown bound moved to {bound} s: check the comment in serve-statefulset.yaml"
    assert grace > bound, (f"{overlay.relative_to(ROOT)}: terminationGracePeriodSeconds {grace} is not above "
                           f"the service's bounded shutdown of {bound:g} s")


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: str(p.relative_to(ROOT)))
def test_windows_target_follows_the_rule_for_the_batching_the_pods_run(overlay: Path) -> None:
    """Half of batching.max_pending_windows, and above batching.max_batch (scaledobject.yaml)."""
    docs = render(overlay)
    _, cfg = serve_config(docs)
    b = cfg.batching
    targets = [float(t["metadata"]["threshold"]) for so in of_kind(docs, "ScaledObject")
               for t in so["spec"]["triggers"] if "windows_waiting" in t["metadata"]["query"]]
    targets += [float(m["external"]["target"]["averageValue"]) for hpa in of_kind(docs, "HorizontalPodAutoscaler")
                for m in hpa["spec"]["metrics"] if "windows_waiting" in m["external"]["metric"]["name"]]
    assert len(targets) == 1, f"{overlay.relative_to(ROOT)}: expected one windows-waiting target, got {targets}"
    (target,) = targets
    assert target == b.max_pending_windows / 2 and b.max_batch < target, (
        f"{overlay.relative_to(ROOT)}: windows-waiting target {target:g} for max_batch {b.max_batch} and "
        f"max_pending_windows {b.max_pending_windows}; the rule asks for {b.max_pending_windows / 2:g}")


def test_gpu_overlay_runs_larger_batches_than_the_default() -> None:
    _, default = serve_config(render(K8S))
    _, gpu = serve_config(render(K8S / "overlays" / "gpu"))
    assert gpu.batching.max_batch > default.batching.max_batch
    assert gpu.batching.max_pending_windows > default.batching.max_pending_windows


def test_no_comment_says_the_autoscaler_scales_on_the_raw_lag_gauge() -> None:
    """The autoscalers read the recording rules; comments that said `soccerkd_consumer_lag` misled."""
    stale = [str(p.relative_to(ROOT)) for p in sorted(K8S.rglob("*.yaml"))
             if re.search(r"(HPA|KEDA|external metric)[^\n]*soccerkd_consumer_lag", p.read_text())]
    assert not stale, f"stale autoscaler comments in {stale}"
