# dfr — two commands a newcomer needs: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SPEED ?= 1
AREA ?= missions/areas/chula-vista.yaml

.PHONY: venv install system-deps panel-assets demo test explore lint typecheck unit bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

venv install: $(STAMP)

# The panel's map library (Leaflet) from npm, copied next to the page: no CDN at run time.
LEAFLET_DIR := dfr/panel/static/vendor/leaflet
NPM_STAMP := node_modules/.package-lock.json

# --ignore-scripts: no package runs code at install (swagger-ui-dist pulls in a telemetry postinstall);
# the panel only copies files out of node_modules.
$(NPM_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "error: npm is needed to build the panel's map library" \
	  "(Debian: apt-get install npm), then run make again" >&2; exit 1; }
	npm ci --no-audit --no-fund --ignore-scripts
	@touch $(NPM_STAMP)

$(LEAFLET_DIR)/leaflet.js: $(NPM_STAMP)
	rm -rf $(LEAFLET_DIR) && mkdir -p $(LEAFLET_DIR)
	cp node_modules/leaflet/dist/leaflet.js node_modules/leaflet/dist/leaflet.css $(LEAFLET_DIR)/
	cp -R node_modules/leaflet/dist/images $(LEAFLET_DIR)/images
	@touch $@

# Swagger UI for /docs, from npm too: the API documentation works on a closed network.
SWAGGER_DIR := dfr/panel/static/vendor/swagger-ui
SWAGGER_FILES := swagger-ui-bundle.js swagger-ui.css favicon-32x32.png LICENSE

$(SWAGGER_DIR)/swagger-ui-bundle.js: $(NPM_STAMP)
	rm -rf $(SWAGGER_DIR) && mkdir -p $(SWAGGER_DIR)
	cp $(addprefix node_modules/swagger-ui-dist/,$(SWAGGER_FILES)) $(SWAGGER_DIR)/
	@touch $@

panel-assets: $(LEAFLET_DIR)/leaflet.js $(SWAGGER_DIR)/swagger-ui-bundle.js

# Debian packages the integration tests use (mosquitto, chromium, PostgreSQL); only as root.
system-deps:
	@bash scripts/system-deps.sh

demo: $(STAMP) panel-assets
	$(BIN)/dfr demo --area $(AREA) --speed $(SPEED)

lint: $(STAMP)
	$(BIN)/ruff check dfr sim tests
	$(BIN)/ruff format --check dfr sim tests

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) panel-assets system-deps lint typecheck
	$(BIN)/pytest -q -ra

# Property and schema tests with fresh random examples (and more of them); `make test` derandomizes them.
EXPLORE_TESTS := tests/unit tests/scenarios/test_scenario_schema.py tests/integration/test_webhooks.py \
	tests/integration/test_api_schema.py
explore: $(STAMP)
	$(BIN)/pytest -q -ra --hypothesis-profile=explore --hypothesis-show-statistics $(EXPLORE_TESTS)

bench: $(STAMP)
	$(BIN)/python -m tests.benchmarks.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache node_modules $(LEAFLET_DIR)
