# The commands a newcomer runs. `make run` and `make test` set up everything they need on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# uv manages the Python environment from uv.lock; if it is not installed, it is put in .tools/ from PyPI.
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
PYTEST_WORKERS ?= auto

.PHONY: help env run run-points run-members scheduler migrate test lint format verify bench bench-quick bench-expiry clean

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-12s %s\n", $$1, $$2}'

$(CURDIR)/.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

env: $(UV) ## create or update the virtual environment from the lock file
	$(UV) sync --frozen --quiet

run: env ## database + migrations + points (:8001) + members (:8002) + scheduler, in the foreground
	$(UV) run --frozen loyalty run

run-points: env ## only the points service (granian)
	$(UV) run --frozen loyalty serve points

run-members: env ## only the members service (granian)
	$(UV) run --frozen loyalty serve members

scheduler: env ## only the scheduler process
	$(UV) run --frozen loyalty scheduler

migrate: env ## apply both services' migrations
	$(UV) run --frozen loyalty migrate

verify: env ## check every ledger invariant of the `make run` database
	$(UV) run --frozen loyalty verify

test: env ## the whole test suite on a real PostgreSQL (embedded unless DATABASE_URL is set)
	$(UV) run --frozen pytest -n $(PYTEST_WORKERS) --dist loadfile

lint: env ## ruff (lint and format check) and mypy --strict
	$(UV) run --frozen ruff check libs services tests bench
	$(UV) run --frozen ruff format --check libs services tests bench
	$(UV) run --frozen mypy

format: env ## apply ruff's formatting and safe fixes
	$(UV) run --frozen ruff format libs services tests bench
	$(UV) run --frozen ruff check --fix --exit-zero libs services tests bench
	$(UV) run --frozen ruff format libs services tests bench

bench: env ## the benchmark: services against pgbench on the same machine (BENCH_QUICK=1 for a short run)
	$(UV) run --frozen python -m bench.run

bench-quick: env ## the benchmark's short run (smaller seed, short phases; under 5 minutes)
	BENCH_QUICK=1 $(UV) run --frozen python -m bench.run

bench-expiry: env ## the expiry job against one set-based statement on a copy of the data (BENCH_QUICK=1: smaller)
	$(UV) run --frozen python -m bench.expiry

clean: ## remove the environment and local data (the embedded databases included)
	-$(UV) run --frozen loyalty db stop 2>/dev/null
	rm -rf .venv .tools .data .pytest_cache .mypy_cache .ruff_cache .hypothesis
