# Single-window clearance gateway. `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.DEFAULT_GOAL := help
.PHONY: help run test test-fast lint fmt clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed ## Start gateway, worker, relay, sandbox and Redis (embedded defaults)
	$(PY) -m gateway run

test: $(VENV)/.dev-installed ## Run the whole test suite (unit + end-to-end)
	$(PY) -m pytest

test-fast: $(VENV)/.dev-installed ## Unit tests only
	$(PY) -m pytest tests/unit

lint: $(VENV)/.dev-installed ## Lint with ruff
	$(VENV)/bin/ruff check .

fmt: $(VENV)/.dev-installed ## Format with ruff
	$(VENV)/bin/ruff format .

clean: ## Remove the virtualenv and local data (var/)
	rm -rf $(VENV) var .pytest_cache .ruff_cache
