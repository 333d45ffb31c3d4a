"""Hardening of deploy/ checked without a cluster: the restricted Pod Security Standard for every
workload, disruption budget and network policy, alert severities with a runbook each, the
generated PrometheusRule in step with alerts.yml, a pinned image, and model distribution that
does not tie replicas to one node."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
README = DEPLOY / "README.md"
POD_VOLUME_TYPES = {"configMap", "emptyDir", "persistentVolumeClaim", "secret", "projected", "downwardAPI",
                    "csi", "ephemeral"}


def docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def objects() -> Iterator[tuple[Path, dict]]:
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name != "kustomization.yaml":
            for doc in docs(path):
                yield path, doc


def pod_specs() -> Iterator[tuple[str, dict]]:
    for path, doc in objects():
        spec: Any = None
        if doc["kind"] == "Pod":
            spec = doc["spec"]
        elif doc["kind"] in {"StatefulSet", "Deployment", "Job", "DaemonSet"}:
            spec = doc["spec"]["template"]["spec"]
        if spec is not None:
            yield f"{path.relative_to(DEPLOY)}:{doc['kind']}/{doc['metadata']['name']}", spec


def test_every_workload_meets_the_restricted_pod_security_standard() -> None:
    """The checks of the `restricted` profile (kubernetes.io/docs/concepts/security/pod-security-standards)."""
    specs = list(pod_specs())
    assert len(specs) >= 3
    for where, spec in specs:
        pod_sc = spec.get("securityContext", {})
        assert pod_sc.get("runAsNonRoot") is True, where
        assert pod_sc.get("runAsUser", 1) != 0, where
        assert not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")), where
        for vol in spec.get("volumes", []):
            kinds = set(vol) - {"name"}
            assert kinds <= POD_VOLUME_TYPES, f"{where}: volume {vol['name']} of type {kinds}"
        for c in [*spec.get("initContainers", []), *spec["containers"]]:
            sc = c.get("securityContext", {})
            what = f"{where} container {c['name']}"
            assert sc.get("allowPrivilegeEscalation") is False, what
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], what
            assert not sc.get("capabilities", {}).get("add"), what
            assert not sc.get("privileged"), what
            assert sc.get("runAsNonRoot", True) is True and sc.get("runAsUser", 1) != 0, what
            seccomp = sc.get("seccompProfile") or pod_sc.get("seccompProfile")
            assert seccomp and seccomp["type"] in {"RuntimeDefault", "Localhost"}, what
            assert not any(p.get("hostPort") for p in c.get("ports", [])), what


def _find(kind: str, name: str) -> dict:
    (found,) = [d for _, d in objects() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def test_pdb_and_network_policy_select_the_serve_pods() -> None:
    sts = _find("StatefulSet", "soccerkd-serve")
    labels = sts["spec"]["template"]["metadata"]["labels"]
    pdb = _find("PodDisruptionBudget", "soccerkd-serve")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # minAvailable: 1 with one replica would block every node drain.
    assert pdb["spec"].get("maxUnavailable") == 1 and "minAvailable" not in pdb["spec"]
    policy = _find("NetworkPolicy", "soccerkd-serve")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    (ingress,) = policy["spec"]["ingress"]
    assert [p["port"] for p in ingress["ports"]] == ["metrics"]
    egress_ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
    broker_port = int(yaml.safe_load(_find("ConfigMap", "soccerkd-stream-config")["data"]["stream.yaml"])
                      ["kafka"]["bootstrap"].rsplit(":", 1)[1])
    assert {53, broker_port} <= egress_ports


def test_models_reach_every_replica_without_a_shared_node_volume() -> None:
    """No ReadWriteOnce models volume (Multi-Attach): the checkpoint comes from an image."""
    spec = _find("StatefulSet", "soccerkd-serve")["spec"]["template"]["spec"]
    (init,) = spec["initContainers"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in volumes["models"]
    assert {m["name"] for m in init["volumeMounts"]} == {"models"}
    checkpoint = yaml.safe_load(_find("ConfigMap", "soccerkd-stream-config")["data"]["stream.yaml"])["model"]["checkpoint"]
    assert init["command"][-1] == checkpoint
    (serve,) = [c for c in spec["containers"] if c["name"] == "serve"]
    assert any(m["name"] == "models" and m.get("readOnly") for m in serve["volumeMounts"])
    model_dockerfile = (DEPLOY / "docker" / "Dockerfile.model").read_text()
    assert init["command"][1] in model_dockerfile
    assert not [d for _, d in objects() if d["kind"] == "PersistentVolumeClaim"
                and "ReadWriteOnce" in d["spec"].get("accessModes", [])]


def alert_rules() -> list[dict]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def test_alerts_are_page_or_ticket_and_each_has_a_runbook_section() -> None:
    readme = README.read_text()
    headings = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
                for h in re.findall(r"^#+ (.+)$", readme, re.M)}
    rules = alert_rules()
    assert {r["labels"]["severity"] for r in rules} == {"page", "ticket"}
    for rule in rules:
        runbook = rule["annotations"]["runbook"]
        assert runbook == f"deploy/README.md#{rule['alert'].lower()}", rule["alert"]
        assert rule["alert"].lower() in headings, f"deploy/README.md has no section for {rule['alert']}"
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_idle_cameras_do_not_page() -> None:
    """No alert fires on "no frames" alone: between matches the cameras are idle on purpose."""
    for rule in alert_rules():
        expr = " ".join(str(rule["expr"]).split())
        if "soccerkd_frames_total" in expr and "== 0" in expr:
            assert "soccerkd_consumer_lag" in expr, f"{rule['alert']} fires between matches"


def test_prometheusrule_is_generated_from_alerts_yml() -> None:
    out = subprocess.run([sys.executable, str(DEPLOY / "prometheus" / "make_prometheusrule.py"), "--check"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    (rule,) = docs(K8S / "components" / "podmonitor" / "prometheusrule.yaml")
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == yaml.safe_load(ALERTS.read_text())["groups"]
    component = yaml.safe_load((K8S / "components" / "podmonitor" / "kustomization.yaml").read_text())
    assert "prometheusrule.yaml" in component["resources"]


def test_dockerfile_pins_its_base_and_dependencies_and_has_a_healthcheck() -> None:
    text = (DEPLOY / "docker" / "Dockerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M).group(1)
    assert re.fullmatch(r"python:3\.11-slim-\w+@sha256:[0-9a-f]{64}", base), base
    assert base in (DEPLOY / "docker" / "Dockerfile.model").read_text()
    assert text.count("-c /tmp/constraints.txt") == 2, "torch and the project install under the constraints"
    assert "HEALTHCHECK" in text and "/healthz" in text
    constraints = (DEPLOY / "docker" / "constraints.txt").read_text()
    pins = dict(line.split("==") for line in constraints.splitlines() if line and not line.startswith("#"))
    assert {"torch", "torchvision", "kafka-python", "prometheus-client", "numpy"} <= set(pins)
    assert pins["kafka-python"] == re.search(r'kafka-python\[crc32c\]==([\d.]+)',
                                             (ROOT / "pyproject.toml").read_text()).group(1)
    ignore = (DEPLOY / "docker" / "Dockerfile.dockerignore").read_text()
    assert "!deploy/docker/constraints.txt" in ignore


def test_make_installs_the_tests_under_the_image_constraints() -> None:
    """`make test` resolves the same versions as the image (audit finding 7)."""
    make = (ROOT / "Makefile").read_text()
    assert re.search(r"^CONSTRAINTS\s*=\s*deploy/docker/constraints.txt$", make, re.M)
    installs = re.findall(r"pip install (.*)$", make, re.M)
    project = [line for line in installs if "-e '.[" in line]
    assert project and all("-c $(CONSTRAINTS)" in line for line in project), project
    assert re.search(r"^\$\(STAMP\):.*\$\(CONSTRAINTS\)", make, re.M), "a new constraints file must reinstall"
    # Java 17 and Maven come from make too (the README's two commands on a bare Debian machine).
    assert "openjdk-17-jre-headless" in make and "maven" in make
    assert "openjdk-17-jdk-headless" in make, "javac: the Java Kafka client test compiles its reader"
    assert re.search(r"^jars: .*\bjava\b", make, re.M)


def test_constraints_match_the_test_environment() -> None:
    """Every package of the project's closure (runtime, test, export) is pinned at the version
    this test environment runs: the venv and the image no longer drift apart unseen."""
    out = subprocess.run([sys.executable, str(DEPLOY / "docker" / "make_constraints.py"), "--check"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint not installed")
@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.model"])
def test_hadolint_is_clean(name: str) -> None:
    out = subprocess.run(["hadolint", str(DEPLOY / "docker" / name)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
