# Two commands for a newcomer: `make test` and `make demo`. Each sets itself up idempotently:
# a .venv with the project installed from pyproject.toml, and the Kafka jars cached once under
# ~/.cache/soccerkd (needs Java 17+ and Maven on PATH).
VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.soccerkd-installed
PYTEST_ARGS ?=

.PHONY: setup jars tools lint-imports test test-unit test-integration test-chaos demo clean

setup: $(STAMP) jars

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,export]'
	@touch $@

jars: $(STAMP)
	@$(PY) -c "from stream.dev.broker import ensure_jars; ensure_jars(quiet=False)"

# Debian packages the tests use: promtool (`prometheus`), `docker-compose` (config check of
# deploy/compose/compose.yaml) and `ffmpeg` (live MPEG-TS feeds over HTTP and UDP for the
# ingester). Installs only what is missing; needs root or sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
tools:
	@missing=""; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	command -v ffmpeg >/dev/null || missing="$$missing ffmpeg"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

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
