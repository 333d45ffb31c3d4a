"""Write the Prometheus Operator's PrometheusRule from deploy/prometheus/alerts.yml.

    python deploy/prometheus/make_prometheusrule.py          # rewrite the manifest
    python deploy/prometheus/make_prometheusrule.py --check  # exit 1 if it is out of date

alerts.yml stays the one source of the rules (promtool tests it, plain Prometheus loads it);
tests/unit/deploy/test_prometheus_rules.py fails when the generated manifest drifts from it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ALERTS = HERE / "alerts.yml"
TARGET = HERE.parent / "k8s" / "components" / "podmonitor" / "prometheusrule.yaml"
HEADER = """\
# GENERATED from deploy/prometheus/alerts.yml by deploy/prometheus/make_prometheusrule.py: do not
# edit; change alerts.yml and rerun the script. The Prometheus resource's ruleSelector must match
# these labels (kube-prometheus-stack selects `release: <helm release name>` by default).
"""


def render(alerts_text: str) -> str:
    groups = yaml.safe_load(alerts_text)["groups"]
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "soccerkd-stream",
                     "labels": {"app.kubernetes.io/part-of": "soccerkd-stream"}},
        "spec": {"groups": groups},
    }
    return HEADER + yaml.safe_dump(doc, sort_keys=False, width=100, allow_unicode=True)


def main(argv: list[str]) -> int:
    text = render(ALERTS.read_text())
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET} is out of date: run python {Path(__file__).as_posix()}", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
