# Entry points for humans and CI. The two set-up commands are `make run` and `make test`.
SHELL := bash
.SHELLFLAGS := -o errexit -o nounset -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CATALOG := apps/catalog
# Re-install only when the dependency pins change.
VENV_STAMP := $(VENV)/.installed

.PHONY: help
help: ## List the targets.
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(VENV_STAMP): pyproject.toml $(CATALOG)/pyproject.toml $(CATALOG)/constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "make: Python 3.11+ is needed; $(PYTHON) is $$($(PYTHON) -V 2>&1). Run: make PYTHON=python3.11 ..." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c $(CATALOG)/constraints.txt pip
	$(BIN)/pip install --quiet --disable-pip-version-check -c $(CATALOG)/constraints.txt \
	  -e '$(CATALOG)[test,lint]' --group platform --group bench --group ansible --group suite
	@touch $@

.PHONY: venv
venv: $(VENV_STAMP) ## Create .venv: the service, its test tools and the platform-test packages (pinned).

.PHONY: run
run: venv ## Serve the API on SQLite (var/) with demo data; Ctrl-C stops it.
	@mkdir -p var
	@$(BIN)/catalog migrate
	@$(BIN)/catalog seed
	@echo
	@echo "  API   http://$${CATALOG_HOST:-127.0.0.1}:$${CATALOG_PORT:-8000}/v1/products"
	@echo "  Docs  http://$${CATALOG_HOST:-127.0.0.1}:$${CATALOG_PORT:-8000}/docs"
	@echo "  Token make token   (dev-only; this one is valid for an hour:)"
	@echo "        $$($(BIN)/catalog token)"
	@echo
	@exec $(BIN)/catalog serve

.PHONY: token
token: venv ## Print a development JWT (catalog:read catalog:write) on the last line.
	@$(BIN)/catalog token

# The pipeline's steps exist to run git, cosign, crane and kubectl from PATH: bandit's subprocess
# checks (B404, B603, B607) would flag each call and say nothing about them.
.PHONY: lint
lint: venv ## ruff, mypy and bandit over the service and the pipeline's steps.
	$(BIN)/ruff check .
	$(BIN)/ruff format --check $(CATALOG) tests bench tools argo-workflows/steps
	$(BIN)/mypy
	$(BIN)/bandit --quiet --recursive $(CATALOG)/src --exclude $(CATALOG)/src/catalog/migrations
	$(BIN)/bandit --quiet --recursive argo-workflows/steps --skip B404,B603,B607

.PHONY: test
test: lint ## Lint, then the whole pytest suite (every tier; CI=true fails on any skip).
	$(BIN)/pytest --numprocesses 2

.PHONY: fuzz
fuzz: venv ## Schemathesis on SQLite and PostgreSQL with 200 examples per operation (FUZZ_SEED to vary; ~15 min).
	FUZZ_MAX_EXAMPLES=$${FUZZ_MAX_EXAMPLES:-200} $(BIN)/pytest -m process apps/catalog/tests/process/test_fuzz.py

.PHONY: chaos
chaos: venv ## Fault tests under load on a real PostgreSQL, CHAOS_ITERATIONS times each (default 5, max 50; ~1 min a round): database stopped and frozen, SIGTERM to 2 workers.
	CHAOS_ITERATIONS=$${CHAOS_ITERATIONS:-5} $(BIN)/pytest -m process \
	  apps/catalog/tests/process/test_faults.py::test_database_stopped_then_frozen_under_load \
	  apps/catalog/tests/process/test_shutdown.py::test_serve_sigterm_under_keep_alive_load_with_workers

.PHONY: bench
bench: venv ## Load-test the API beside bare Sanic and raw asyncpg per endpoint (~20 min; BENCH_QUICK=1 for a short check; BENCH_SOAK_SECONDS=300 adds a soak).
	@command -v wrk >/dev/null || { echo "make: bench needs wrk (apt-get install wrk)" >&2; exit 1; }
	$(BIN)/python -m bench

.PHONY: image
image: ## Build the catalog image with buildah (local Debian base where no registry answers); prints digest and size.
	@$(CATALOG)/image/build.sh

.PHONY: image-smoke
image-smoke: venv ## Run the image with podman the chart's way (SQLite, PostgreSQL, registry push + cosign).
	$(BIN)/pytest -m container tests/container

.PHONY: clean
clean: ## Remove the virtualenv and local state (var/).
	rm -rf $(VENV) var

# make tools, cluster-up, cluster-down: the Go-built toolchain and the test control plane.
include tools/tools.mk
