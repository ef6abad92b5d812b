# Two commands on a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
SDK14 := .venv-sdk14
PORT ?= 8000

.PHONY: run test install sdk14 lint browser-deps soak

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -U pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

# azure-batch 14.2.0 (msrest) cannot share a virtualenv with 15.x: its own one.
$(SDK14)/.installed:
	$(PYTHON) -m venv $(SDK14)
	$(SDK14)/bin/pip install -q -U pip
	$(SDK14)/bin/pip install -q 'azure-batch==14.2.0'
	touch $@

sdk14: $(SDK14)/.installed

run: install
	$(VENV)/bin/python manage.py migrate --noinput
	$(VENV)/bin/python manage.py collectstatic --noinput -v0
	PORT=$(PORT) $(VENV)/bin/python manage.py serve --port $(PORT)

# The browser tests drive Debian's Chromium; install it where it is missing (as root). They
# run axe-core (npm, pinned and integrity-checked by .ci/fetch-axe) on every page.
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { echo "installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@.ci/fetch-axe || echo "axe-core could not be fetched: the accessibility tests will skip, saying so"

# The suite in TEST_WORKERS pytest-xdist workers (tests/parallel.py: a data dir and a test
# database each, the Slurm and host-user tests kept together on one); TEST_WORKERS=0 runs
# it serially, in this process.
TEST_WORKERS ?= 2
test: install sdk14 browser-deps
	$(VENV)/bin/python manage.py collectstatic --noinput -v0
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# ruff's lint rules and its formatter (pyproject.toml's [tool.ruff]), and the layers
# (pyproject.toml's [tool.importlinter], ARCHITECTURE.md); .ci/run runs it first.
LINTED := batchsite tasks tests benchmarks manage.py
lint: install
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/lint-imports --no-cache

# The reliability run of issue 8 (not part of `make test`; about 25 minutes): 32 clients x
# 3 min on SQLite and on a throwaway PostgreSQL cluster, then the fault runs. A quick look:
# make soak SOAK_ARGS='--db sqlite --clients 4 --seconds 20 --fault-seconds 40'
soak: install
	$(VENV)/bin/python benchmarks/soak.py $(SOAK_ARGS)
