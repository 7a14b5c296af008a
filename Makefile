# Two commands do everything: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test setup check lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

## Start web + worker (+ embedded Valkey, SQLite, Twilio simulator) in the foreground.
run: $(STAMP)
	$(BIN)/leadbot run

## Validate every shipped flow and the roster, hold the import layering, then run the whole suite.
test: $(STAMP)
	$(BIN)/leadbot flows check
	$(BIN)/leadbot roster check
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/speed_to_dial.py
	$(BIN)/python bench/intake.py
	$(BIN)/python bench/webhook_turn.py

clean:
	rm -rf $(VENV) var
