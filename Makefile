# The few targets a newcomer needs. `make demo` and `make test` do their own set-up.
SHELL := /bin/bash
VENV := .venv/bin
ENV := source scripts/airflow_env.sh &&

.PHONY: setup demo test lint format lock testbed-down clean

setup:  ## Debian packages, .venv from the lock, migrated Airflow home
	@bash scripts/setup.sh

demo: setup  ## bring up the demo test bed (MariaDB, sshd, Moodle double) on demo data
	@$(ENV) $(VENV)/python -m testbed up --name demo --size $${SIZE:-60}

test: setup lint  ## lint, then every test (real MariaDB, OpenSSH, Airflow)
	@$(ENV) $(VENV)/pytest -q -p no:cacheprovider; rc=$$?; \
	  if [ $$rc = 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

lint:
	@$(VENV)/ruff check dags include plugins tests testbed

format:
	@$(VENV)/ruff format dags include plugins tests testbed && $(VENV)/ruff check --fix dags include plugins tests testbed

lock:  ## re-resolve requirements*.txt into the pinned locks (then commit them)
	@$(VENV)/uv pip compile -q --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	  requirements.txt -o requirements.lock
	@$(VENV)/uv pip compile -q --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	  -c requirements.lock requirements-dev.txt -o requirements-dev.lock

testbed-down:  ## stop the test beds' sshd (databases are kept)
	@$(VENV)/python -m testbed down --name demo; $(VENV)/python -m testbed down --name test

clean: testbed-down
	rm -rf .airflow .testbed .pytest_cache .ruff_cache
