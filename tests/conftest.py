"""Test tiers: ``tests/unit`` (no Kafka, no GPU), ``tests/integration`` (a real local Kafka
broker started once per session), ``tests/chaos`` (marker ``chaos``: kills and a broker restart
against a broker of their own, broker faults against a 3-node cluster of their own), and the
``gpu`` marker (skipped without CUDA).

Set ``SOCCERKD_KAFKA_BOOTSTRAP=host:port`` to run the integration tier against a broker you
already run (e.g. ``soccerkd broker start``); otherwise the session starts its own. Under CI
(``CI=true``) a broker that cannot start fails the tests that need it; it never skips them.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    cuda = _cuda_available()
    for item in items:
        parents = Path(str(item.fspath)).parents
        if here / "integration" in parents:
            item.add_marker(pytest.mark.integration)
        if here / "chaos" in parents:
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.chaos)
        if item.get_closest_marker("gpu") and not cuda:
            item.add_marker(pytest.mark.skip(reason="needs CUDA (gpu marker) and none is available"))


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.fixture(scope="session")
def kafka_broker():
    """A real Apache Kafka broker for the whole session (``.bootstrap``, ``.create_topic``)."""
    from stream.dev.broker import ExternalBroker, LocalBroker

    external = os.environ.get("SOCCERKD_KAFKA_BOOTSTRAP")
    if external:
        yield ExternalBroker(external)
        return
    from stream.errors import BrokerError

    broker = LocalBroker()
    try:
        broker.start()
    except BrokerError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"could not start the local Kafka broker under CI: {exc}", pytrace=False)
        pytest.skip(f"could not start the local Kafka broker: {exc}")
    print(f"\n[kafka] broker {broker.version} at {broker.bootstrap} started in {broker.startup_seconds:.1f} s")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """A topic name unique to this test (topics are never shared between tests)."""
    return f"{request.node.name[:40].replace('[', '-').replace(']', '')}-{uuid.uuid4().hex[:8]}"


# -- no secret in what the suite writes (issue 22) --------------------------------------------------
# The passwords the tests use (tests/integration/test_kafka_security.py, test_stream_secrets.py, the
# local broker's throw-away keystores) and any URL with a password in it. Every test's captured
# stdout, stderr and log lines are read after it runs; one that holds a secret fails the session.
SECRET_PATTERNS = re.compile(r"s3cret-Pw|hunter2 !x|cam-pa55|soccerkd-client|soccerkd-local"
                             r"|[a-z][a-z0-9+.-]*://[^\s/:@]+:[^\s/@]+@")
_LEAKS: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for name, text in report.sections:
        match = SECRET_PATTERNS.search(text)
        if match:
            _LEAKS.append(f"{report.nodeid} ({report.when}, {name}): ...{text[max(0, match.start() - 60):match.end()]}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _LEAKS:
        print("\nsecrets in the output of the test suite (stream/errors.redact_url, the logging formatter):",
              *_LEAKS[:20], sep="\n  ")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
