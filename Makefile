# The few targets a newcomer needs. `make demo` and `make test` do their own set-up.
SHELL := /bin/bash
VENV := .venv/bin
ENV := source scripts/airflow_env.sh &&

.PHONY: help setup demo ui stack stack-down test unit bench bench-big lint format lock testbed-down clean
.DEFAULT_GOAL := help

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):[^#]*## (.*)/\1\t\2/' | \
	  awk -F'\t' '{ printf "  make %-13s %s\n", $$1, $$2 }'

setup:  ## Debian packages, .venv from the lock, migrated Airflow home
	@bash scripts/setup.sh

demo: setup  ## demo test bed on demo data, one real provisioning cycle, and what it did
	@$(ENV) $(VENV)/python -m testbed.demo $${SIZE:-60}

ui: setup  ## Airflow (standalone) on the demo test bed: http://localhost:8080
	@$(ENV) eval "$$($(VENV)/python -m testbed env --name demo)" && \
	  export AIRFLOW_VAR_MOODLE_PARENT_PROVISIONING="$$($(VENV)/python -c 'from testbed.demo import demo_settings; from testbed.stack import TestBed; from testbed.config import TestBedConfig; import json; print(json.dumps(demo_settings(TestBed(TestBedConfig.from_env("demo")))))')" && \
	  PATH="$(CURDIR)/.venv/bin:$$PATH" airflow standalone  # it starts its parts as `airflow ...` from PATH

stack: setup  ## the compose file's Celery topology as processes here (PostgreSQL, Redis, scheduler, dag-processor, triggerer, api-server, 2 workers) on the demo test bed
	@$(VENV)/python -m testbed.airflow_stack up --name demo

stack-down:  ## stop exactly what `make stack` started (by pid)
	@$(VENV)/python -m testbed.airflow_stack down --name demo

test: setup lint  ## lint, then every test (real MariaDB, OpenSSH, Airflow)
	@export PP_AIRFLOW_HOME=$(CURDIR)/.airflow/test && $(ENV) \
	  { [ -f "$$AIRFLOW_HOME/airflow.db" ] || $(VENV)/airflow db migrate >/dev/null; } && $(VENV)/pytest -q -p no:cacheprovider --durations=15; rc=$$?; \
	  if [ $$rc = 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

unit: setup  ## the pure tests (the cycle's decisions, settings, the sync's prediction): seconds, no test bed
	@$(VENV)/pytest -q -p no:cacheprovider tests/unit

bench: setup  ## the cycle at 100, 1,000 and 10,000 requests beside the WordPress plugin's pattern: BENCHMARKS.md (~7 min)
	@export PP_AIRFLOW_HOME=$(CURDIR)/.airflow/bench && $(ENV) \
	  { [ -f "$$AIRFLOW_HOME/airflow.db" ] || $(VENV)/airflow db migrate >/dev/null; } && $(VENV)/python -m bench $${BENCH_ARGS:-}

bench-big: setup  ## a trust's cycle at 50,000 and 100,000 requests, into the same BENCHMARKS.md (~1 hour)
	@$(MAKE) --no-print-directory bench BENCH_ARGS="--sizes $${SIZES:-50000,100000} --stack-size 0 --no-empty"

lint:  ## ruff: the lint rules, and the formatting `make format` writes
	@$(VENV)/ruff check $(wildcard dags include plugins tests testbed bench) && \
	  $(VENV)/ruff format --check -q $(wildcard dags include plugins tests testbed bench) || \
	  { echo "make lint: run make format, then look at what ruff still reports" >&2; exit 1; }

format:  ## ruff format, and ruff's own fixes
	@$(VENV)/ruff format dags include plugins tests testbed bench && $(VENV)/ruff check --fix dags include plugins tests testbed bench

lock:  ## re-resolve requirements*.txt into the pinned locks (then commit them)
	@$(VENV)/uv pip compile -q --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	  requirements.txt -o requirements.lock
	@$(VENV)/uv pip compile -q --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	  -c requirements.lock requirements-dev.txt -o requirements-dev.lock

testbed-down:  ## stop the test beds' sshd (databases are kept)
	@$(VENV)/python -m testbed down --name demo; $(VENV)/python -m testbed down --name test; $(VENV)/python -m testbed down --name bench

clean: stack-down testbed-down  ## stop everything and remove the Airflow homes, test beds and caches
	rm -rf .airflow .testbed .pytest_cache .ruff_cache
