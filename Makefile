# reserved-share backend. `make help` lists the targets (each documented by its `## ` comment).
#
# Commands needing PostgreSQL/Redis run under deploy/embedded.py: it starts embedded servers
# under .embedded/ unless DATABASE_URL and REDIS_URL are both set in the environment.

PY ?= .venv/bin/python
VENV ?= .venv
N ?= 1000000
CHAOS_N ?= 100000
UNITS ?= 60000
ORDERS ?= 10000000
COMPLETIONS ?= 100000
PYTEST_ARGS ?=

VENV_PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed
WRAP := $(PY) deploy/embedded.py --

.DEFAULT_GOAL := help
.PHONY: help venv install lock migrate seed run import lint fmt test bench bench-match bench-aggregate bench-progress docs chaos clean

help: ## List the make targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

venv: install ## Same as install

install: $(STAMP) ## Create .venv if missing; install requirements.lock + the project (only when they change)

$(VENV_PY):
	python3 -m venv $(VENV)

$(UV): | $(VENV_PY)
	$(VENV_PY) -m pip install --quiet uv

# --compile-bytecode: uv does not write .pyc files by default, and where PYTHONDONTWRITEBYTECODE is
# set nothing ever writes them: every process would compile its imports again (~2 s per start)
$(STAMP): requirements.lock pyproject.toml | $(UV)
	$(UV) pip install --python $(VENV_PY) --compile-bytecode -r requirements.lock
	$(UV) pip install --python $(VENV_PY) --no-deps -e .
	touch $@

lock: | $(UV) ## Regenerate requirements.lock from pyproject.toml (uv pip compile, with the dev extra)
	$(UV) pip compile pyproject.toml --extra dev -o requirements.lock --python-version 3.11

migrate: install ## Apply the alembic migrations (alembic upgrade head)
	$(WRAP) $(PY) -m alembic upgrade head

seed: install ## Migrate, then load the demo data (python -m shared.seed)
	$(WRAP) sh -c '$(PY) -m alembic upgrade head && $(PY) -m shared.seed'

run: install ## Migrate, seed, then run every process of deploy/Procfile (Ctrl-C stops all)
	$(WRAP) sh -c '$(PY) -m alembic upgrade head && $(PY) -m shared.seed && \
	export PYTHON=$(PY) && exec $(PY) -m honcho -d . -f deploy/Procfile start'

import: install ## Import a bank statement beside `make run`: make import FILE=path [FORMAT=f] [PROFILE=p]
	@test -n "$(FILE)" || { echo "usage: make import FILE=path/to/statement [FORMAT=csv|xlsx|xls|mt940|camt053] [PROFILE=name]" >&2; exit 2; }
	$(WRAP) $(PY) -m services.payments.statements import "$(FILE)" $(if $(FORMAT),--format $(FORMAT)) $(if $(PROFILE),--profile $(PROFILE))

lint: install ## ruff check, ruff format --check, mypy
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy shared services tests migrations deploy

fmt: install ## Format the code (ruff format) and apply ruff's fixes
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

test: lint ## install, lint, then pytest (extra arguments: PYTEST_ARGS="-k foo -x")
	$(WRAP) $(PY) -m pytest $(PYTEST_ARGS)

bench: bench-match bench-aggregate bench-progress ## Run every benchmark

bench-match: install ## Payments matching benchmark (N=1000000 bank lines by default)
	$(PY) -m compileall -q shared services
	$(WRAP) $(PY) -m services.payments.bench --n $(N)

bench-aggregate: install ## Confirmation aggregation benchmark (UNITS=60000 filed units; database bench_agg)
	$(WRAP) $(PY) -m services.confirmation.bench --units $(UNITS)

bench-progress: install ## Progress benchmark (UNITS=60000 units, ORDERS=10000000, COMPLETIONS=100000)
	$(WRAP) $(PY) -m services.confirmation.progress_bench --units $(UNITS) --orders $(ORDERS) \
		--completions $(COMPLETIONS)

chaos: install ## Fault suite on private embedded servers (not in make test; CHAOS_N=100000 lines)
	$(PY) -m services.payments.chaos --n $(CHAOS_N)

docs: install ## Regenerate docs/http-reference.md from the four OpenAPI documents
	$(PY) -m shared.http_reference --write

clean: ## Stop leftover embedded servers; remove .embedded/ and caches (keeps .venv)
	@if [ -x "$(PY)" ]; then $(PY) deploy/embedded.py --clean; fi
	rm -rf .embedded .pytest_cache .mypy_cache .ruff_cache build dist celerybeat-schedule*
	find . -path ./.venv -prune -o -type d -name __pycache__ -exec rm -rf {} +
