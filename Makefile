# sigforge developer entry points. Each target bootstraps .venv idempotently (re-installs only when pyproject.toml
# changes), so `make run` and `make test` work from a fresh clone.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= $(CURDIR)/var
JOBS   ?= 2

.PHONY: run test lint typecheck imports unit bench clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("sigforge needs Python >= 3.11, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

## Start the appliance on its embedded default (SQLite + embedded broker + console) at http://127.0.0.1:8470/
run: venv
	SIGFORGE_DATA_DIR=$${SIGFORGE_DATA_DIR:-$(DATA)} $(BIN)/python installer/dev_setup.py
	SIGFORGE_DATA_DIR=$${SIGFORGE_DATA_DIR:-$(DATA)} $(BIN)/sigforge up

## Lint, type-check, check the layer contracts, then run the whole suite in parallel.
test: venv lint
	$(BIN)/pytest -n $(JOBS) --dist loadgroup -q

unit: venv
	$(BIN)/pytest -n $(JOBS) --dist loadgroup -q -m "not slow"

lint: venv
	$(BIN)/ruff check src tests bench migrations installer
	$(BIN)/ruff format --check src tests bench migrations installer
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: venv
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache build dist
