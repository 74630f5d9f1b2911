# One entry point for set-up, tests, lint and the local stack. See README.md.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup test unit lint stack-up stack-down stack-status clean

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

## setup: virtualenv at .venv with the project and its test/dev tools
setup: $(VENV)/.installed

## test: lint, types, then every test (starts the local Kafka + Redis when no other is given)
test: setup lint
	$(BIN)/python -m pytest

## unit: the pure-domain tests only, no services
unit: setup
	$(BIN)/python -m pytest -m "not integration"

## lint: ruff (lint + format check) and mypy --strict
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

stack-up: setup
	$(BIN)/python -m streams.devstack up

stack-down: setup
	$(BIN)/python -m streams.devstack down

stack-status: setup
	$(BIN)/python -m streams.devstack status

clean: stack-down
	rm -rf .devstack
