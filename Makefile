# Setter Campaigns — every target installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Tests run against PostgreSQL and Redis on this machine unless told otherwise.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/setter
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
# Extra options for `manage.py runstack`, e.g. RUN_ARGS="--port 8001 --sandbox-port 8766".
RUN_ARGS ?=

.PHONY: install run test lint

# Runtime deps (requirements.txt, what the image installs) plus tests and tooling.
$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Setter Campaigns needs Python 3.11 or newer (PYTHON=$(PYTHON))."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

## Run the whole product on embedded defaults (SQLite, file-system broker, Meta sandbox).
run: $(STAMP)
	$(BIN)/python manage.py runstack $(RUN_ARGS)

## Run the test suite on PostgreSQL + Redis. The browser tests drive Debian's chromium
## (installed here when missing: the setup runs as root; Playwright never downloads a browser).
test: $(STAMP)
	command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium)
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/lint-imports
	$(BIN)/mypy
