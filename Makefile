# prtrace developer commands. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
UV_VERSION := 0.13.8
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PY := .venv/bin/python
export UV_PROJECT_ENVIRONMENT := .venv

.PHONY: setup test lint bench demo openapi schemas clean

.tools/bin/uv:
	python3 -m venv .tools && .tools/bin/pip install --quiet uv==$(UV_VERSION)

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet
	touch $@

setup: .venv/.synced

test: setup  ## unit, functional and end-to-end tests
	$(PY) -m pytest

lint: setup  ## ruff and mypy
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy layers/core/python/prtrace functions infra_cdk prtrace_cli examples bench

bench: setup  ## ingest benchmark; writes bench-results.json
	$(PY) -m bench.run

demo: setup  ## the ingestion flow on the local AWS emulator
	$(PY) -m examples.demo

openapi: setup  ## regenerate the committed OpenAPI document
	$(PY) -m functions.api.openapi > functions/api/openapi.json

schemas: setup  ## regenerate the committed JSON Schemas of trace schema v1
	$(PY) -m prtrace.json_schema

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache .hypothesis bench-results.json
