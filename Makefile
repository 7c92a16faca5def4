# dfr — two commands a newcomer needs: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SPEED ?= 1
AREA ?= missions/areas/chula-vista.yaml

.PHONY: venv install system-deps demo test lint typecheck unit bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

venv install: $(STAMP)

# Debian packages the integration tests use (mosquitto, chromium, PostgreSQL); only as root.
system-deps:
	@bash scripts/system-deps.sh

demo: $(STAMP)
	$(BIN)/dfr demo --area $(AREA) --speed $(SPEED)

lint: $(STAMP)
	$(BIN)/ruff check dfr sim tests
	$(BIN)/ruff format --check dfr sim tests

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) system-deps lint typecheck
	$(BIN)/pytest -q -ra

bench: $(STAMP)
	$(BIN)/python -m tests.benchmarks.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
