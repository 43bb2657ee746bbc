# ichigen — every target installs what it needs on a fresh machine (uv from PyPI, then the locked venv).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
VENV := .venv
BIN := $(VENV)/bin
SHOPIFY_SCHEMA := var/reference/shopify/admin_2026-10.json.gz
SHARED_SCHEMA := ../shared/reference/shopify/admin_2026-10.json.gz
# Shopify publishes its Admin schema in this npm package; used only when ../shared is not beside the clone.
SCHEMA_NPM_PACKAGE := @shopify/dev-mcp@1.16.0
PYTEST_WORKERS ?= 2

.PHONY: help install browser-deps demo once test bench lint fmt clean

help:
	@echo "make demo   start the sandbox world, Dagster (http://127.0.0.1:3000) and the dashboards (http://127.0.0.1:8501)"
	@echo "make once   one headless cycle against the sandbox: ingest → dbt build → publish → reverse sync; prints a summary"
	@echo "make test   install and run the test suite"
	@echo "make bench  run the benchmarks (writes bench/results.json; ORDER_LINES=N for a smaller warehouse run)"
	@echo "make lint   ruff"

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# --compile-bytecode: uv does not write .pyc files by itself, and where PYTHONDONTWRITEBYTECODE is set nothing
# else does, so every dbt, Dagster or test process would compile its imports again (dbt's start-up: 3.9 s → 1.9 s,
# DECISIONS.md D241).
# native/ (the page scanner, C) is built by uv from source: a change to it re-syncs.
$(VENV)/.synced: uv.lock pyproject.toml native/pyproject.toml native/ichigen_pagescan.c | $(UV)
	$(UV) sync --frozen --quiet --compile-bytecode
	@touch $@

# The Shopify Admin schema the sandbox validates every request against.
$(SHOPIFY_SCHEMA):
	@mkdir -p $(dir $@)
	@if [ -f $(SHARED_SCHEMA) ]; then cp $(SHARED_SCHEMA) $@; \
	else tmp=$$(mktemp -d) && (cd $$tmp && npm pack --silent $(SCHEMA_NPM_PACKAGE) >/dev/null) \
	  && tar -xzf $$tmp/*.tgz -C $$tmp package/dist/data/admin_2026-10.json.gz \
	  && mv $$tmp/package/dist/data/admin_2026-10.json.gz $@ && rm -rf $$tmp; fi

install: $(VENV)/.synced $(SHOPIFY_SCHEMA)

# The browser tests (tests/browser) drive Debian's chromium; CJK fonts so Japanese labels are not boxes.
# Installed only when /usr/bin/chromium is missing (apt-get as root, else through sudo).
CHROMIUM := /usr/bin/chromium
browser-deps:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi; \
	  echo "installing Debian's chromium and fonts-noto-cjk for the browser tests"; \
	  $$sudo apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk; \
	fi

demo: install
	$(BIN)/ichigen demo

once: install
	$(BIN)/ichigen once

test: install browser-deps
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup

bench: install
	$(UV) sync --frozen --quiet --compile-bytecode --group bench
	$(BIN)/python -m bench $(if $(ORDER_LINES),--order-lines $(ORDER_LINES))

lint: install
	$(BIN)/ruff check .

fmt: install
	$(BIN)/ruff format .

clean:
	rm -rf var dbt_project/target dbt_project/logs .pytest_cache
