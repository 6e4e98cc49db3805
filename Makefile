# The two commands a newcomer runs are `make run` and `make test`; everything else serves them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint typecheck unit install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

## Start the collector, the API and a demo Azure feed on the embedded store (no Azure needed).
run: $(STAMP)
	-bash scripts/fetch-geoip.sh --if-missing $${HUBSIGHT_DATA_DIR:-data}
	$(BIN)/hubsight --data-dir $${HUBSIGHT_DATA_DIR:-data} run --demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy

# Two workers on CI's two cores (most tests wait on brokers, browsers and servers); the tests that
# assert a time budget run afterwards, alone, so that no other test's work is in their figures.
WORKERS ?= 2

unit: $(STAMP)
	sh scripts/test-deps.sh
	$(BIN)/pytest -n $(WORKERS)

## Lint, type-check and run the whole suite, broker tests included.
test: lint typecheck unit

clean:
	rm -rf $(VENV) data test-artifacts
