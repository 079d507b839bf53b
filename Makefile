# Two commands do everything on a fresh machine:
#   make run    set up .venv (first time only), trust the bundled notes/ and open the TUI on them
#   make test   set up .venv (first time only) and run the whole test suite
# `make setup` adds notes/ to YOUR trust list (`d2lkb trust notes`, kept in your own config
# folder, not in this repository), so that `d2lkb check` may run the bundled notes' code.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench setup clean

setup: $(STAMP)
	$(BIN)/d2lkb trust notes

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: setup
	$(BIN)/d2lkb

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 -q

lint: $(STAMP)  # what `make test` checks before the tests (the code is not `ruff format`ted)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[bench]'  # anki, for the review comparison
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) kb/kb.sqlite*
