# Two commands matter: `make run` (the product, locally) and `make test` (the whole suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test bench mutation install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: $(VENV)/.installed
	scripts/run.sh

test: $(VENV)/.installed-dev
	scripts/test.sh

bench: $(VENV)/.installed-dev
	scripts/bench.sh

# Mutation score per core module against its own unit tests (not part of `make test`).
mutation: $(VENV)/.installed-dev
	$(BIN)/python scripts/mutation.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis artifacts
