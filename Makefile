# Entry points. `make run` and `make test` work on a fresh machine with only
# Python 3.11+ and make (and npm, for the tests' axe-core): they create .venv
# (and node_modules) and install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# The browser tests' accessibility checks (axe-core), from package-lock.json.
NODE_STAMP := node_modules/.installed-stamp

.PHONY: install run test test-fast lint format bench migrations-check clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

install: $(STAMP) $(NODE_STAMP)

# VERBOSE=1: every request and task on the console too (they always go to var/log/run.log).
run: $(STAMP)
	$(if $(VERBOSE),SYNCHEALTH_RUN_VERBOSE=$(VERBOSE) )$(BIN)/python -m synchealth.run

# The whole suite, in one process; TEST_PROCESSES=2 (at most 3) runs it in
# several, a test module per process at a time, each with its own test database
# and its own Redis databases (tests/support/parallel.py).
TEST_PROCESSES ?= 1
test: install
	$(BIN)/python -m pytest $(if $(filter-out 0 1,$(TEST_PROCESSES)),-n $(TEST_PROCESSES) --dist loadfile) $(PYTEST_ARGS)

# The edit-run loop: everything but the system tests (browsers, real workers,
# subprocesses), which `make test` and CI still run; one pytest process per
# core (each on its own test database), a test module per process at a time.
test-fast: install
	$(BIN)/python -m pytest -m "not system" -n auto --dist loadfile $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	SYNCHEALTH_ALLOW_INSECURE_SECRET=1 $(BIN)/mypy synchealth dashboard alerts sandbox accounts
	$(BIN)/lint-imports --no-cache
	SYNCHEALTH_ALLOW_INSECURE_SECRET=1 $(BIN)/python manage.py makemigrations --check --dry-run

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migrations-check: install
	SYNCHEALTH_ALLOW_INSECURE_SECRET=1 $(BIN)/python manage.py makemigrations --check --dry-run

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var test-artifacts node_modules
