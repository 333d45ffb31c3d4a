# Two commands for a newcomer: `make test` and `make demo`. Each sets itself up idempotently:
# a .venv with the project installed from pyproject.toml, and the Kafka jars cached once under
# ~/.cache/soccerkd (needs Java 17+ and Maven on PATH).
VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.soccerkd-installed
PYTEST_ARGS ?=

.PHONY: setup jars test test-unit test-integration demo clean

setup: $(STAMP) jars

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,export]'
	@touch $@

jars: $(STAMP)
	@$(PY) -c "from stream.broker import ensure_jars; ensure_jars(quiet=False)"

test: setup
	$(PY) -m pytest $(PYTEST_ARGS) tests

test-unit: setup
	$(PY) -m pytest $(PYTEST_ARGS) tests/unit

test-integration: setup
	$(PY) -m pytest $(PYTEST_ARGS) tests/integration

demo: setup
	$(VENV)/bin/soccerkd demo

clean:
	rm -rf build *.egg-info .pytest_cache
