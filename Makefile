# Two commands after a clone: `make demo` runs the demo, `make test` runs the checks and tests.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: demo test lint services bench clean screenshots

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

demo: $(BIN)/.installed  ## embedded broker + collector + simulators; Ctrl-C stops
	$(BIN)/facility demo

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

test: lint  ## lint, types, then every test (real-server tests skip when a server is not installed)
	$(BIN)/pytest

services:  ## install the servers the tests start (Debian, as root)
	@missing=""; \
	for bin in mosquitto mosquitto_pub influxd victoria-metrics docker-compose openssl chromium; do \
		command -v $$bin >/dev/null || [ -x /usr/sbin/$$bin ] || missing=1; \
	done; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing=1; \
	ls /usr/share/fonts/opentype/noto/NotoSansCJK* >/dev/null 2>&1 || missing=1; \
	if [ -n "$$missing" ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			mosquitto mosquitto-clients influxdb victoria-metrics postgresql docker-compose openssl \
			chromium fonts-noto-cjk >/dev/null; \
	fi

screenshots: $(BIN)/.installed  ## the README's pictures of the console, taken by its browser tests
	FACILITY_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q tests/console -k "worked_to_closed or months_report"

bench: $(BIN)/.installed  ## benchmarks: ingest, rules, publish→ticket latency
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.rules
	$(BIN)/python -m bench.ticket_latency

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
