# sigforge developer entry points. Each target bootstraps .venv idempotently (re-installs only when pyproject.toml
# changes), so `make run` and `make test` work from a fresh clone.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= $(CURDIR)/var
JOBS   ?= 2

.PHONY: run test lint typecheck imports unit bench clean venv frozen wheelhouse

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
	$(BIN)/ruff check src tests bench migrations installer offline-wheels
	$(BIN)/ruff format --check src tests bench migrations installer offline-wheels
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: venv
	$(BIN)/python bench/run_all.py

## Freeze sigforge with PyInstaller (appliance/sigforge.spec): onedir -> dist/sigforge/, onefile -> dist/sigforge-onefile.
frozen: venv
	SIGFORGE_FREEZE_TARGETS=onedir,onefile $(BIN)/pyinstaller --noconfirm --clean --log-level WARN \
		--distpath dist --workpath build/pyinstaller appliance/sigforge.spec
	@du -sh dist/sigforge dist/sigforge-onefile

## Connected build host: fill offline-wheels/wheelhouse/ with the locked wheels (+ the sigforge wheel, SHA256SUMS).
## WHEEL_TARGETS: current (default), all, or e.g. cp311-x86_64,cp312-aarch64. See offline-wheels/README.md.
WHEEL_TARGETS ?= current
wheelhouse: venv
	$(BIN)/python offline-wheels/fill.py --targets $(WHEEL_TARGETS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache build dist
