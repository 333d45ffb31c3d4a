"""promtool on the Prometheus files: config and rules check, and the rule unit tests in
deploy/prometheus/tests/ (first dead letter, autoscaling signals, idle cameras, ...).

promtool comes from Debian's `prometheus` package (.ci/run installs it). Without it the tests
skip on a workstation and fail under CI=true, as a missing Kafka broker does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROM = Path(__file__).resolve().parents[3] / "deploy" / "prometheus"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("promtool is missing under CI: install Debian's `prometheus` package (.ci/run does)",
                        pytrace=False)
        pytest.skip("promtool not installed (Debian package `prometheus`)")
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120, cwd=PROM)


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-k8s.yml"])
def test_promtool_check_config(config: str) -> None:
    out = run("check", "config", config)
    if "kubernetes_sd_configs not found" in out.stdout + out.stderr:
        # Debian builds Prometheus without Kubernetes discovery (its Go client is not packaged).
        pytest.skip("this promtool is built without Kubernetes service discovery (Debian's is)")
    assert out.returncode == 0, out.stdout + out.stderr


def test_promtool_check_rules() -> None:
    out = run("check", "rules", "alerts.yml")
    assert out.returncode == 0, out.stdout + out.stderr


def test_promtool_rule_unit_tests() -> None:
    tests = sorted(str(p.relative_to(PROM)) for p in (PROM / "tests").glob("*.yml"))
    assert tests
    out = run("test", "rules", *tests)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_every_alert_has_a_firing_and_a_quiet_promtool_case() -> None:
    """An alert no case fires could be silent for good (the audit found three); one no case
    keeps quiet could page all the time. Read from the files, so it needs no promtool."""
    import yaml

    rules = [r for g in yaml.safe_load((PROM / "alerts.yml").read_text())["groups"] for r in g["rules"]]
    cases = [c for path in sorted((PROM / "tests").glob("*.yml"))
             for t in yaml.safe_load(path.read_text())["tests"] for c in t.get("alert_rule_test", [])]
    firing = {c["alertname"] for c in cases if c["exp_alerts"]}
    quiet = {c["alertname"] for c in cases if not c["exp_alerts"]}
    alerts = [r["alert"] for r in rules if "alert" in r]
    never_fired = [a for a in alerts if a not in firing]
    never_quiet = [a for a in alerts if a not in quiet]
    assert not never_fired, f"alerts no promtool case fires: {never_fired}"
    assert not never_quiet, f"alerts no promtool case keeps quiet: {never_quiet}"
