# Single-window clearance gateway. `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.DEFAULT_GOAL := help
.PHONY: help run test test-fast prove soak lint fmt clean system-deps bench

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

# Debian tools some tests use: xmlsec1 (an independent XML-DSig implementation),
# SoftHSM2 (a PKCS#11 token standing in for a broker's USB key), PostgreSQL (the production
# database path) and Chromium with a CJK font (the dashboard's browser tests; playwright
# drives Debian's chromium, it never downloads a browser). Installed when we are root
# on a Debian-like machine; otherwise those tests skip and say why.
system-deps: ## Install xmlsec1, SoftHSM2, PostgreSQL and Chromium when missing (root + apt only)
	@missing=""; \
	command -v xmlsec1 >/dev/null || missing="$$missing xmlsec1"; \
	command -v softhsm2-util >/dev/null || missing="$$missing softhsm2"; \
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v chromium >/dev/null || missing="$$missing chromium fonts-wqy-zenhei"; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing:$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	    || echo "could not install$$missing; their tests will skip"; \
	elif [ -n "$$missing" ]; then echo "not installed:$$missing (their tests will skip)"; fi

test: $(VENV)/.dev-installed system-deps ## Run the whole test suite (unit, integration, end-to-end)
	$(PY) -m pytest

POSTGRES ?=
prove: $(VENV)/.dev-installed system-deps ## The proof matrix T1-T10 at full scale (POSTGRES=1: T1 on PostgreSQL too): reliability-report.json, README table
	GATEWAY_PROVE=1 GATEWAY_PROVE_POSTGRES=$(POSTGRES) GATEWAY_REPORT=reliability-report.json $(PY) -m pytest -v \
	  $$($(PY) -m tests.proof files); status=$$?; \
	  $(PY) -m tests.proof readme reliability-report.json; exit $$status

SOAK_SECONDS ?= 7200
soak: $(VENV)/.dev-installed system-deps ## The soak: hours of load, a fault a minute, nothing creeps (SOAK_SECONDS=7200): soak-report.json
	GATEWAY_SOAK_SECONDS=$(SOAK_SECONDS) $(PY) -m pytest -s -q tests/faults/test_soak.py

test-fast: $(VENV)/.dev-installed ## Unit tests only
	$(PY) -m pytest tests/unit

lint: $(VENV)/.dev-installed ## Lint with ruff
	$(VENV)/bin/ruff check .

fmt: $(VENV)/.dev-installed ## Format with ruff
	$(VENV)/bin/ruff format .

clean: ## Remove the virtualenv and local data (var/)
	rm -rf $(VENV) var .pytest_cache .ruff_cache

$(VENV)/.bench-installed: $(VENV)/.dev-installed bench/requirements.txt
	$(PY) -m pip install --quiet -r bench/requirements.txt
	touch $@

# BENCH_ARGS, e.g. make bench BENCH_ARGS="--seconds 600" (memory) or "--postgres --workers 3".
bench: $(VENV)/.bench-installed system-deps ## Benchmark: floor, then the gateway over HTTP (bench/results/)
	$(PY) -m bench $(BENCH_ARGS)
