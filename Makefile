# One entry point for set-up, tests, lint and the local stack. See README.md.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The pure core must stay fully covered, branches included.
COV := --cov=segmentation --cov-branch --cov-report=term-missing:skip-covered --cov-fail-under=100

.PHONY: setup lock core test test-cluster unit lint demo bench chaos chaos-reduced stack-up stack-down stack-status clean

# The tested versions from constraints.txt (a new release on the registry cannot turn CI red); `make lock`
# resolves pyproject.toml's ranges afresh in a scratch virtualenv and rewrites constraints.txt.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

# The core compiled by mypyc into .build/mypyc (never next to the sources); rebuilt when segmentation/ or a
# compiled module of the write path (streams/core/choice.py, WRITE_PATH) changes.
CORE := .build/mypyc/manifest.json
WRITE_PATH := $(shell sed -n 's/^    "\(streams\/[a-z_]*\/[a-z_]*\.py\)",$$/\1/p' streams/core/choice.py)
$(CORE): $(VENV)/.installed streams/core/build.py streams/core/choice.py $(WRITE_PATH) \
		$(shell find segmentation -type f -not -path '*/__pycache__/*')
	$(BIN)/python -m streams.core.build

## setup: virtualenv at .venv with the project and its test/dev tools, and the compiled core (pure Python if
## it cannot be built)
setup: $(VENV)/.installed $(CORE)

## lock: the newest versions pyproject.toml allows, resolved in .build/lock-venv, written to constraints.txt
lock:
	rm -rf .build/lock-venv && mkdir -p .build
	$(PY) -m venv .build/lock-venv
	.build/lock-venv/bin/python -m pip install -q --upgrade pip
	.build/lock-venv/bin/python -m pip install -q -e '.[dev]'
	{ sed -n '/^#/p' constraints.txt; .build/lock-venv/bin/python -m pip freeze --exclude-editable; } > .build/constraints.txt
	mv .build/constraints.txt constraints.txt && rm -rf .build/lock-venv

## core: rebuild the compiled core now
core: $(VENV)/.installed
	$(BIN)/python -m streams.core.build

## test: lint, types, the unit and contract tests on the pure-Python core (coverage), every test on the
## compiled core (starts the local Kafka + Redis when no other is given), the tests marked `cluster` again
## on a Redis Cluster (the local stack's 3 primaries unless SEGSTREAM_REDIS_CLUSTER_URL), then both cores
## over 1M events
# The compiled suite mostly waits on Kafka and Redis (~15 % of a core), so it runs in TEST_WORKERS processes
# (pytest-xdist; one file per process at a time, tests/chaos one after the other: their private stacks share
# ports), then the Redis Cluster run; the two CPU-bound checks run at low priority beside both instead of
# before or after them: the unit tests on the pure-Python core and the differential check (their output shown
# at the end). All four must pass. TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= 3
test: setup lint
	@mkdir -p .build; \
	SEGSTREAM_PURE_PYTHON=1 nice -n 10 $(BIN)/python -m pytest -p no:cacheprovider -m "not integration and not chaos" \
		$(COV) > .build/unit-pure.log 2>&1 & \
	pure=$$!; \
	nice -n 10 $(BIN)/python -m tests.core_differential --events 1000000 > .build/differential.log 2>&1 & \
	differential=$$!; \
	SEGSTREAM_EXPECT_CORE=compiled $(BIN)/python -m pytest -n $(TEST_WORKERS); suite=$$?; \
	SEGSTREAM_TEST_REDIS=cluster SEGSTREAM_EXPECT_CORE=compiled $(BIN)/python -m pytest -m cluster; cluster=$$?; \
	wait $$pure; unit=$$?; \
	wait $$differential; checked=$$?; \
	echo "unit and contract tests on the pure-Python core, with coverage (beside the suite):"; \
	cat .build/unit-pure.log; \
	echo "python -m tests.core_differential --events 1000000 (beside the suite):"; cat .build/differential.log; \
	test $$suite -eq 0 && test $$cluster -eq 0 && test $$unit -eq 0 && test $$checked -eq 0

## test-cluster: every Redis integration test against a Redis Cluster (those that cannot apply skip, saying why)
test-cluster: setup
	SEGSTREAM_TEST_REDIS=cluster $(BIN)/python -m pytest tests/contract tests/integration

## unit: the pure-domain tests only, no services, on the pure-Python core (whose coverage is measured)
unit: setup
	SEGSTREAM_PURE_PYTHON=1 $(BIN)/python -m pytest -m "not integration and not chaos" $(COV)

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
