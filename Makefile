# PruneLab: `make run` starts it, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

MLFLOW_VENV := .venv-mlflow
MLFLOW_VERSION ?= 3.17.2
MLFLOW_EXPORT_IMPORT_VERSION ?= 1.2.0

.PHONY: run test lint bench bench-quick mlflow-venv browser compose-tools netns-tools clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[worker,keras3,dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/prunelab run

# Headless Chromium for the browser tests: Debian's package (test tools cannot download browsers here).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

# Debian's docker-compose validates docker-compose.yml in the tests (`docker-compose config` needs no Docker daemon).
compose-tools:
	@command -v docker-compose >/dev/null || { apt-get update -qq && apt-get install -y -qq docker-compose >/dev/null; }

# ip, tc and socat for the tests that put a worker in its own network namespace (as root; without them,
# or without root, those tests run the worker on loopback instead).
netns-tools:
	@command -v socat >/dev/null && command -v ip >/dev/null && command -v tc >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq socat iproute2 >/dev/null; } || true

test: $(STAMP) browser compose-tools netns-tools mlflow-venv
	$(BIN)/python -m pytest

LINTED := core backend worker harness tests migrations bench prunelab

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy
	$(BIN)/lint-imports

# MLflow, the read-back benchmark's peer and the client the MLflow API tests drive (with mlflow-export-import,
# whose folders PruneLab imports and exports), in its own virtualenv: its pins would move PruneLab's packages.
# mlflow-export-import imports tabulate without declaring it. The stamp names the versions: a change reinstalls.
MLFLOW_STAMP := $(MLFLOW_VENV)/.installed-$(MLFLOW_VERSION)-$(MLFLOW_EXPORT_IMPORT_VERSION)
$(MLFLOW_STAMP):
	test -d $(MLFLOW_VENV) || $(PYTHON) -m venv $(MLFLOW_VENV)
	$(MLFLOW_VENV)/bin/python -m pip install --quiet 'mlflow==$(MLFLOW_VERSION)' \
	  'mlflow-export-import==$(MLFLOW_EXPORT_IMPORT_VERSION)' tabulate
	touch $@

mlflow-venv: $(MLFLOW_STAMP)

# Regenerate docs/benchmarks.md (charts go to docs/benchmarks/, not committed).
bench: $(STAMP) mlflow-venv
	$(BIN)/python -m pip install --quiet -e '.[worker,bench]'
	$(BIN)/python -m bench

bench-quick: $(STAMP) mlflow-venv
	$(BIN)/python -m pip install --quiet -e '.[worker,bench]'
	$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) $(MLFLOW_VENV) .pytest_cache test-output
