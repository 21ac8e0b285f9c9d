# prtrace developer commands. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
UV_VERSION := 0.13.8
# The CDK CLI, pinned (`--yes`: npx never stops to ask on a fresh machine).
CDK := npx --yes aws-cdk@2.1148.1
# The Node.js the CDK CLI and jsii run on: a maintained LTS line, from npm's `node` package
# into .tools/node (the machine's own Node may be older), first on PATH for every recipe.
NODE_VERSION := 24.21.0
NODE := .tools/node/bin/node
export PATH := $(abspath .tools/node/bin):$(PATH)
STAGE ?= prod
LAMBDA_PYTHON := 3.14  # infra_cdk.assets.LAMBDA_PYTHON_VERSION
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PY := .venv/bin/python
export UV_PROJECT_ENVIRONMENT := .venv

.PHONY: setup sandbox cdk-cli test test-fast lint bench demo local deploy-local synth deploy deploy-viewer openapi \
  schemas iam-usage clean preflight images docs

.tools/bin/uv:
	python3 -m venv .tools && .tools/bin/pip install --quiet uv==$(UV_VERSION)

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet --all-extras
	touch $@

# The platform's own package (what npm's `node` package installs by a script): no install
# script runs.
NODE_PACKAGE := node-linux-$(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x64)
$(NODE):
	npm install --global --prefix .tools/node --no-audit --no-fund \
	  $(NODE_PACKAGE)@$(NODE_VERSION) >/dev/null
	$(NODE) --version

setup: .venv/.synced $(NODE)

sandbox: ## bubblewrap, a Docker engine and the offline QA test image (root; cached)
	bash .ci/sandbox-setup.sh

cdk-cli: $(NODE)  ## fetch the pinned CDK CLI into npm's cache (the deploy-local test runs it)
	$(CDK) --version >/dev/null

# Two pytest processes at once: the sandbox suite (containers, bwrap, PyPI) waits on the
# engine and the network while the rest keeps the other core busy. Its output follows the
# rest's, whole; the target fails when either does.
SANDBOX_LOG := test-artifacts/sandbox-suite.log
test: setup sandbox cdk-cli  ## the whole test suite (what CI runs)
	@mkdir -p $(dir $(SANDBOX_LOG))
	@$(PY) -m pytest tests/sandbox -p no:cacheprovider > $(SANDBOX_LOG) 2>&1 & sandbox=$$!; \
	  $(PY) -m pytest --ignore=tests/sandbox; rest=$$?; \
	  wait $$sandbox; sandboxed=$$?; \
	  echo "==== tests/sandbox (run beside the rest; $(SANDBOX_LOG)) ===="; cat $(SANDBOX_LOG); \
	  echo "rest: exit $$rest, tests/sandbox: exit $$sandboxed"; \
	  test $$rest -eq 0 -a $$sandboxed -eq 0

# The edit loop: no local cloud, no sandbox, nothing marked slow; both cores; property
# tests with fewer examples. `make test` remains the whole suite.
test-fast: setup  ## unit, functional and client tests in under a minute
	$(PY) -m pytest tests/unit tests/functional tests/client -q -n 2 --dist loadfile \
	  -m "not localcloud and not sandbox and not slow" --hypothesis-profile=fast

lint: setup  ## ruff and mypy
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy layers/core/python/prtrace functions infra_cdk local_cloud prtrace_cli prtrace_client examples bench

bench: setup sandbox  ## benchmarks (ingest, assemble, local cloud, pipeline, QA, judge); writes bench-results.json
	$(PY) -m bench.run

demo: setup sandbox  ## the example trace through the whole pipeline on the local cloud, then shut down
	$(PY) -m examples.demo

local: setup  ## run the local cloud in the foreground (Ctrl-C stops it)
	$(PY) -m local_cloud $(LOCAL_ARGS)

# LOCAL_ARGS: more options of `python -m local_cloud` (--aws-port, --api-port, --state-dir).
deploy-local: setup cdk-cli  ## `make local`, the stack deployed by the real CDK CLI
	$(PY) -m local_cloud --cdk-cli "$(CDK)" $(LOCAL_ARGS)

# The same STAGE `make deploy` deploys (its profile's defaults: a prod stage needs
# PRTRACE_ALARM_EMAILS or PRTRACE_ALARM_TOPIC_ARN); `make synth STAGE=dev` for a dev one.
synth: setup  ## synthesize the CloudFormation template of STAGE into cdk.out (deps layer built)
	PATH="$(dir $(abspath $(UV))):$$PATH" PRTRACE_STAGE=$(STAGE) \
	  CDK_OUTDIR=cdk.out $(PY) -m infra_cdk.app

# PREFLIGHT_ARGS: more options of `python -m infra_cdk.preflight` (--endpoint-url, --region,
# -c name=value for settings given as context).
preflight: setup  ## what would make `make deploy` fail or roll back, each with its fix
	$(PY) -m infra_cdk.preflight -c stage=$(STAGE) $(PREFLIGHT_ARGS)

deploy: setup  ## preflight, then bootstrap (idempotent) and deploy to the AWS account in the environment
	$(PY) -m infra_cdk.preflight -c stage=$(STAGE) $(PREFLIGHT_ARGS)
	@# The runtime's Python compiles the deps layer's bytecode (synth warns if none is found).
	$(UV) python install $(LAMBDA_PYTHON) || echo "no Python $(LAMBDA_PYTHON): layer without bytecode"
	$(CDK) bootstrap
	$(CDK) deploy -c stage=$(STAGE) --require-approval broadening

deploy-viewer: setup  ## the trace viewer's stack (S3 + CloudFront), after `make deploy` of the same stage
	$(CDK) deploy --app "$(PY) -m infra_cdk.viewer_app" -c stage=$(STAGE) --require-approval broadening

# IMAGES_ARGS: options of .ci/images.sh (--registry URI to push, --no-scan, --platform).
images:  ## build the QA and export images for linux/arm64 with buildx, scan them, push with --registry
	bash .ci/images.sh $(IMAGES_ARGS)

openapi: setup  ## regenerate the committed OpenAPI document
	$(PY) -m functions.api.openapi > functions/api/openapi.json

schemas: setup  ## regenerate the committed JSON Schemas of trace schema v1
	$(PY) -m prtrace.json_schema

docs: setup  ## the documentation site (docs/, mkdocs.yml) into site/; a broken link or anchor fails it
	$(PY) -m mkdocs build --strict --site-dir site

iam-usage: setup  ## re-record the AWS calls each function makes (tests/functional) for the IAM check
	$(PY) -m pytest tests/functional -q -p tests.infra.aws_calls --record-aws-calls=tests/infra/iam_usage.json

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache .hypothesis bench-results.json \
	  .build .prtrace cdk.out
