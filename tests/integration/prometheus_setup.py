"""Helpers of the tests that run Debian's Prometheus tools (``from prometheus_setup import ...``):
find a tool (a failure under CI, a skip elsewhere) and ask a running Prometheus."""

from __future__ import annotations

import json
import os
import shutil
import urllib.parse
import urllib.request

import pytest


def need(tool: str, *, package: str | None = None) -> str:
    """The path of ``tool``; missing, it fails the test under ``CI=true`` and skips it elsewhere.
    ``package``: the Debian package that installs it, named in the message."""
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            hint = f": install Debian's `{package}` package (make tools)" if package else " (make tools)"
            pytest.fail(f"{tool} is missing under CI{hint}", pytrace=False)
        pytest.skip(f"{tool} not installed" + (f" (Debian package `{package}`)" if package else ""))
    return path


def query(base: str, expr: str) -> list[dict]:
    """The result of an instant query ``expr`` on the Prometheus at ``base``."""
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]["result"]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.load(resp)
