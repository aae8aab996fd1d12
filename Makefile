# airflow-provider-partneros: build, test and release tasks.
#
#   make test           what CI runs (.ci/run): venv, lint, typecheck, system-deps, pytest-split
#                       (the suite in two processes), lineage-test, scale-test,
#                       package-check, matrix (min and max legs side by side)
#   make demo           run every DAG in example_dags/ in real Airflow against the PartnerOS stand-in
#   make lint | typecheck | pytest | package-check | matrix | bench | clean
#
# Needs only Python 3 and the package registries; everything else is installed into venvs here.
# Each venv carries a stamp (hash of pyproject.toml + Makefile + interpreter + install args), so a
# second run reuses it without touching the network.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
# Newest Airflow: the dev venv, the packaging check and the newest matrix leg use it.
AIRFLOW_VERSION ?= 3.3.2
# Lowest supported Airflow: must match `apache-airflow>=...` in pyproject.toml.
AIRFLOW_MIN_VERSION ?= 3.2.0
# Matrix legs: lowest Airflow on the lowest Python, newest Airflow on the newest Python here.
# (apache-airflow==3.3.2 installs and imports on CPython 3.13.0 with uv, so 3.13 is used.)
MATRIX_MIN_PYTHON ?= 3.10
MATRIX_MAX_PYTHON ?= 3.13
# The matrix skips the slow markers to keep CI time in check; the main leg runs everything.
MATRIX_PYTEST_ARGS ?= -m "not deployment and not browser and not hosts and not redis"
PYTEST_ARGS ?=

VENV := .venv
BIN := $(VENV)/bin
# ruff and mypy are pinned: their output (formatting, new checks) changes between releases.
DEV_TOOLS := ruff==0.17.6 mypy==2.4.1 types-requests build twine
TEST_DEPS := -e ".[test,redis]" jsonschema

export UV_COMPILE_BYTECODE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

matrix_venv = .venv-matrix-$(1)-py$(2)

# The scale-out environment (tests/scale): CeleryExecutor on PostgreSQL and Redis, in its own venv so
# the dev venv stays a plain Airflow. celery 5.7 breaks apache-airflow-providers-celery 3.26
# (`cannot import name 'retry' from 'celery.backends.database'`), hence <5.7; without [postgres]
# the CLI fails on asyncpg.
SCALE_VENV := .venv-scale
SCALE_DEPS := $(TEST_DEPS) "apache-airflow[postgres]==$(AIRFLOW_VERSION)" apache-airflow-providers-celery \
  "celery[redis]<5.7" psycopg2-binary redis
SCALE_PYTEST_ARGS ?=
LINEAGE_PYTEST_ARGS ?=

# The OpenLineage environment (tests/lineage): the dev venv plus apache-airflow-providers-openlineage, in
# a venv of its own so the dev venv proves the provider works (and imports nothing more) without it.
LINEAGE_VENV := .venv-lineage
LINEAGE_DEPS := $(TEST_DEPS) "apache-airflow==$(AIRFLOW_VERSION)" "apache-airflow-providers-openlineage>=2.20"

.PHONY: help venv system-deps lint typecheck pytest package-check matrix matrix-min matrix-max test demo bench clean \
  scale-venv scale-test bench-scale lineage-venv lineage-test

help:
	@echo "make test           CI: venv, lint, typecheck, pytest (all markers), package-check, matrix"
	@echo "make demo           run example_dags/ end to end in real Airflow against the PartnerOS stand-in"
	@echo "make venv           create/update the dev venv ($(VENV), $(PYTHON), apache-airflow==$(AIRFLOW_VERSION))"
	@echo "make system-deps    Debian packages the tests need (chromium for browser tests), if missing"
	@echo "make lint           ruff check + ruff format --check"
	@echo "make typecheck      mypy (strict, [tool.mypy] in pyproject.toml)"
	@echo "make pytest         the whole pytest suite in the dev venv (PYTEST_ARGS=... to narrow)"
	@echo "make package-check  run README.md's install commands (clone, wheel) in a clean venv, twine check, ask airflow"
	@echo "make matrix         suite on Airflow $(AIRFLOW_MIN_VERSION)/py$(MATRIX_MIN_PYTHON) and $(AIRFLOW_VERSION)/py$(MATRIX_MAX_PYTHON), in parallel"
	@echo "make matrix-min     just the Airflow $(AIRFLOW_MIN_VERSION)/py$(MATRIX_MIN_PYTHON) leg (matrix-max: the other)"
	@echo "make scale-test     tests/scale: CeleryExecutor, PostgreSQL, Redis, 2 workers, 2 triggerers (docs/scale.md)"
	@echo "make lineage-test   tests/lineage: OpenLineage events of real DAG runs (venv with the OpenLineage provider)"
	@echo "make bench          benchmarks/run.py, if there is one"
	@echo "make bench-scale    fan-out of 100 tasks on the scale-out environment, shared vs per-task sessions"
	@echo "make clean          remove venvs, build output and caches"

venv:
	@bash scripts/ensure_venv.sh --venv $(VENV) --python "$(PYTHON)" -- \
	  $(TEST_DEPS) $(DEV_TOOLS) "apache-airflow==$(AIRFLOW_VERSION)"

system-deps:
	@bash scripts/system_deps.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

pytest: venv
	@bash scripts/pytest.sh $(BIN)/python $(PYTEST_ARGS)

# CI's pytest stage: the whole suite in two processes side by side. The tests of many hosts behind one
# IP and of the Redis store mostly wait (on the sign-in limiter's 10 s windows, lock expiries, lingers),
# so they share 2 cores well with the rest: one process took over 20 min, two take about the longer leg.
WAIT_BOUND_TESTS := tests/test_session_store.py tests/test_sessions_across_hosts.py tests/test_redis_store.py \
  tests/test_redis_sessions_across_hosts.py

.PHONY: pytest-split pytest-main pytest-waits
pytest-split: venv
	@bash scripts/parallel_make.sh pytest-main pytest-waits

pytest-main:
	@PYTEST_TIME_LIMIT=$${PYTEST_TIME_LIMIT:-1800} bash scripts/pytest.sh $(BIN)/python $(addprefix --ignore=,$(WAIT_BOUND_TESTS)) $(PYTEST_ARGS)

pytest-waits:
	@PYTEST_TIME_LIMIT=$${PYTEST_TIME_LIMIT:-1800} bash scripts/pytest.sh $(BIN)/python $(WAIT_BOUND_TESTS) $(PYTEST_ARGS)

package-check: venv
	@AIRFLOW_VERSION=$(AIRFLOW_VERSION) bash scripts/check_package.sh

# Both legs run at the same time (their suites mostly wait, so on 2 cores this takes about the time
# of one leg: measured 238 s for both vs 489 s one after the other), each to its own log, printed
# in full when it ends. The target fails if either leg did. The leg venvs are made first, one after
# the other (two editable builds in one source tree at once could trip over each other).
matrix: matrix-venvs
	@bash scripts/parallel_make.sh matrix-min matrix-max

matrix-venvs: venv
	@$(MAKE) matrix-leg-venv LEG_AIRFLOW=$(AIRFLOW_MIN_VERSION) LEG_PYTHON=$(MATRIX_MIN_PYTHON)
	@$(MAKE) matrix-leg-venv LEG_AIRFLOW=$(AIRFLOW_VERSION) LEG_PYTHON=$(MATRIX_MAX_PYTHON)

matrix-min: venv
	@$(MAKE) matrix-leg LEG_AIRFLOW=$(AIRFLOW_MIN_VERSION) LEG_PYTHON=$(MATRIX_MIN_PYTHON)

matrix-max: venv
	@$(MAKE) matrix-leg LEG_AIRFLOW=$(AIRFLOW_VERSION) LEG_PYTHON=$(MATRIX_MAX_PYTHON)

# One leg: LEG_AIRFLOW x LEG_PYTHON, in its own venv made by the dev venv's uv. If
# constraints/airflow-<major.minor>.txt exists it constrains the install (and is part of the stamp):
# Airflow's own constraint files cannot be fetched here, so known-bad newer dependencies are capped there.
leg_minor = $(word 1,$(subst ., ,$(LEG_AIRFLOW))).$(word 2,$(subst ., ,$(LEG_AIRFLOW)))
leg_constraints = $(wildcard constraints/airflow-$(leg_minor).txt)
leg_venv = $(call matrix_venv,$(LEG_AIRFLOW),$(LEG_PYTHON))

.PHONY: matrix-venvs matrix-leg-venv matrix-leg
matrix-leg-venv:
	@py=$$(bash scripts/find_python.sh $(LEG_PYTHON)); \
	 echo "[matrix] apache-airflow==$(LEG_AIRFLOW) on $$py -> $(leg_venv)$(if $(leg_constraints), (constraints: $(leg_constraints)))"; \
	 bash scripts/ensure_venv.sh --venv $(leg_venv) --python "$$py" --uv $(BIN)/uv \
	   --stamp-files "pyproject.toml Makefile $(leg_constraints)" -- \
	   $(TEST_DEPS) "apache-airflow==$(LEG_AIRFLOW)" $(if $(leg_constraints),-c $(leg_constraints))

matrix-leg: matrix-leg-venv
	@$(leg_venv)/bin/python -c 'import sys, airflow; print(f"[matrix] python {sys.version.split()[0]}, airflow {airflow.__version__}")'
	@bash scripts/pytest.sh $(leg_venv)/bin/python $(MATRIX_PYTEST_ARGS)

# The CI entry point: each stage in order, stop at the first failure, print the time of each.
test:
	@bash scripts/run_stages.sh venv lint typecheck system-deps pytest-split lineage-test scale-test package-check matrix

# The scale-out scenarios (marker `scale`, tests/scale): one environment for the whole module, started
# and stopped by the tests themselves. Needs PostgreSQL and Redis from Debian (make system-deps).
scale-venv: venv
	@bash scripts/ensure_venv.sh --venv $(SCALE_VENV) --python "$(PYTHON)" --uv $(BIN)/uv -- $(SCALE_DEPS)

scale-test: scale-venv system-deps
	@PYTEST_TIME_LIMIT=$${PYTEST_TIME_LIMIT:-900} bash scripts/pytest.sh $(SCALE_VENV)/bin/python tests/scale \
	  -m scale --durations=0 -s $(SCALE_PYTEST_ARGS)

# OpenLineage (marker `lineage`, tests/lineage): the same provider with apache-airflow-providers-openlineage
# installed, events written by its file transport. Not collected in venvs without that provider.
lineage-venv: venv
	@bash scripts/ensure_venv.sh --venv $(LINEAGE_VENV) --python "$(PYTHON)" --uv $(BIN)/uv -- $(LINEAGE_DEPS)

lineage-test: lineage-venv
	@bash scripts/pytest.sh $(LINEAGE_VENV)/bin/python tests/lineage -m lineage $(LINEAGE_PYTEST_ARGS)

bench-scale: scale-venv system-deps
	@$(SCALE_VENV)/bin/python benchmarks/bench_scale.py

demo: venv
	@$(BIN)/python scripts/run_demo.py

bench: venv
	@if [ -f benchmarks/run.py ]; then $(BIN)/python benchmarks/run.py; \
	 else echo "no benchmarks yet (benchmarks/run.py does not exist)"; fi

clean:
	rm -rf $(VENV) .venv-matrix-* $(SCALE_VENV) $(LINEAGE_VENV) dist build *.egg-info .mypy_cache .ruff_cache .pytest_cache .bench-out .airflow-home*
	find . -name __pycache__ -type d -not -path './.git/*' -prune -exec rm -rf {} +
