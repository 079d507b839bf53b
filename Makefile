# Two commands do everything on a fresh machine:
#   make run    set up .venv (first time only) and open the TUI on the bundled notes
#   make test   set up .venv (first time only) and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/d2lkb

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[bench]'  # anki, for the review comparison
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) kb/kb.sqlite*
