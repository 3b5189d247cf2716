# Set-up is in the targets themselves: a fresh machine needs only python3 and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The pure core: no I/O, no clock; fully covered, branches included.
CORE := nodefsm/_classify.py,nodefsm/_retry.py,nodefsm/_stats.py

.PHONY: test demo lint typecheck pytest clean venv bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check nodefsm tests benchmarks
	$(BIN)/ruff format --check nodefsm tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/coverage erase
	$(BIN)/coverage run -m pytest -q
	$(BIN)/coverage report --fail-under=90
	@echo "pure core (must be 100 %):"
	$(BIN)/coverage report --fail-under=100 --include='$(CORE)'

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/nodefsm demo

clean:
	rm -rf $(VENV) .coverage .hypothesis .mypy_cache .ruff_cache .pytest_cache

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py
