# make test: build or refresh .venv from a fresh clone, lint, type-check, run every test.
# make demo: sandbox -> meltano run tap-calven target-duckdb dbt-duckdb:build -> the report.
# make report: the HTML report of the DuckDB marts (output/report.html).
# make bench: the benchmark table (see benchmarks/README.md).
# make matrix: the fast tests on moved clocks, odd time zones, random order, a busy CPU.
# make newest-sdk: the fast tests against the newest singer-sdk the pin allows, resolved now.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Meltano lives in its own venv: it pins SQLAlchemy < 2.1, which the tap's venv does not.
# Its plugins (the tap itself, the targets) get their own venvs under .meltano/.
MELTANO_VENV := .venv-meltano
MELTANO_SPEC := meltano~=4.4
MELTANO_STAMP := $(MELTANO_VENV)/.installed
# A throwaway venv with the newest release of every dependency the pins allow.
NEWEST_VENV := .venv-newest-sdk
# Dagster has its own dependency tree: its own venv, exact pins (orchestrate/README.md).
DAGSTER_VENV := .venv-dagster
# dagster-postgres: instance storage on which the `calven` pool holds across processes
# (orchestrate/README.md). It drives psycopg2; SQLAlchemy 2.1 would pick psycopg 3 instead,
# whose parameter style breaks dagster-postgres's NOTIFY, so SQLAlchemy stays on 2.0.
DAGSTER_SPEC := dagster==1.13.27 dagster-webserver==1.13.27 dagster-postgres==0.29.27 sqlalchemy==2.0.44
DAGSTER_STAMP := $(DAGSTER_VENV)/.installed

.PHONY: install meltano dagster test lint typecheck pytest matrix newest-sdk demo report bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv>=0.5,<1"

# The floor of the singer-sdk pin in pyproject.toml: `make test` runs on it, `make newest-sdk`
# on the newest release the pin allows (tests/test_sdk_internals.py keeps the two in step).
SDK_FLOOR := singer-sdk[msgspec]==0.54.9

# Reinstall whenever the project's metadata changes.
$(STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e ".[dev]" "$(SDK_FLOOR)"
	touch $(STAMP)

install: $(STAMP)

$(MELTANO_STAMP): Makefile | $(BIN)/python
	$(BIN)/uv venv --quiet --allow-existing --python $(BIN)/python $(MELTANO_VENV)
	$(BIN)/uv pip install --quiet --python $(MELTANO_VENV)/bin/python "$(MELTANO_SPEC)"
	touch $(MELTANO_STAMP)

meltano: $(MELTANO_STAMP)

$(DAGSTER_STAMP): Makefile | $(BIN)/python
	$(BIN)/uv venv --quiet --allow-existing --python $(BIN)/python $(DAGSTER_VENV)
	$(BIN)/uv pip install --quiet --python $(DAGSTER_VENV)/bin/python $(DAGSTER_SPEC)
	touch $(DAGSTER_STAMP)

dagster: $(DAGSTER_STAMP)

lint: install
	$(BIN)/ruff check tap_calven tests benchmarks scripts transform orchestrate
	$(BIN)/ruff format --check tap_calven tests benchmarks scripts transform orchestrate

typecheck: install dagster
	$(BIN)/mypy
	$(BIN)/mypy --python-executable $(DAGSTER_VENV)/bin/python orchestrate/calven_dagster

pytest: install meltano dagster
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# Two pytest workers (pytest-xdist): the fast tests wait on sockets and subprocesses as much
# as they compute, so two workers halve the wall time even on a busy 2-core machine.
matrix: install meltano
	$(BIN)/python scripts/test_matrix.py --workers 2

newest-sdk: install meltano
	rm -rf $(NEWEST_VENV)
	$(BIN)/uv venv --quiet --python $(BIN)/python $(NEWEST_VENV)
	$(BIN)/uv pip install --quiet --python $(NEWEST_VENV)/bin/python --upgrade --refresh -e ".[dev]"
	@$(NEWEST_VENV)/bin/python -c "from importlib.metadata import version as v; \
	print('newest-sdk: testing singer-sdk', v('singer-sdk'), 'with requests', v('requests'))"
	$(NEWEST_VENV)/bin/pytest -q -m "not e2e" -n 2

demo: install meltano
	$(BIN)/python scripts/demo.py

# The HTML report of the DuckDB marts that `make demo` built (transform/report/).
report: install
	$(BIN)/python transform/report/report.py --database output/warehouse.duckdb --out output/report.html

bench: install meltano dagster
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) $(MELTANO_VENV) $(NEWEST_VENV) $(DAGSTER_VENV) .meltano .pytest_cache .ruff_cache .mypy_cache output
