# One entry point for set-up, tests, lint and the local stack. See README.md.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The pure core must stay fully covered, branches included.
COV := --cov=segmentation --cov-branch --cov-report=term-missing:skip-covered --cov-fail-under=100

.PHONY: setup test unit lint demo bench chaos chaos-reduced stack-up stack-down stack-status clean

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

## setup: virtualenv at .venv with the project and its test/dev tools
setup: $(VENV)/.installed

## test: lint, types, then every test (starts the local Kafka + Redis when no other is given)
test: setup lint
	$(BIN)/python -m pytest $(COV)

## unit: the pure-domain tests only, no services
unit: setup
	$(BIN)/python -m pytest -m "not integration and not chaos" $(COV)

## lint: ruff (lint + format check) and mypy --strict
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## demo: the main job on the local stack: worker + generated events, transitions and segment sizes
demo: setup
	$(BIN)/python -m streams.demo

## chaos: the full chaos suite on a private stack (ports 19092/19093/16379), results into docs/reliability.md
chaos: setup
	$(BIN)/python -m tests.chaos --seeds 5 --report docs/reliability.md

## chaos-reduced: the set `make test` runs (marker chaos), from the command line
chaos-reduced: setup
	$(BIN)/python -m tests.chaos --reduced

## bench: worker vs naive Faust agent, and the pure core's apply throughput
bench: setup
	$(BIN)/python benchmarks/bench_apply.py
	$(BIN)/python benchmarks/bench_worker.py

stack-up: setup
	$(BIN)/python -m streams.devstack up

stack-down: setup
	$(BIN)/python -m streams.devstack down

stack-status: setup
	$(BIN)/python -m streams.devstack status

clean: stack-down
	rm -rf .devstack
