# Two commands on a fresh machine with only Python 3 and make:
#   make run    create .venv, install aiostore, run examples/quickstart.py on a local directory
#   make test   create .venv, install the test extras, run every test and the lint/type checks
#   make bench  every benchmark, one after the other (writers, segmentdb, s3, tables, sql, store),
#               in .venv-bench
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint typecheck pytest bench bench-writers bench-segmentdb bench-s3 bench-tables bench-sql \
	bench-store clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

run: $(STAMP)
	$(PY) examples/quickstart.py

test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(PY) -m ruff check aiostore tests examples benchmarks

typecheck: $(STAMP)
	$(PY) -m mypy

pytest: $(STAMP)
	$(PY) -m pytest -q

bench: bench-writers bench-segmentdb bench-s3 bench-tables bench-sql bench-store

bench-writers:
	$(PYTHON) benchmarks/bench_writers.py

bench-segmentdb:
	$(PYTHON) benchmarks/bench_segmentdb.py

bench-s3:
	$(PYTHON) benchmarks/bench_s3.py

bench-tables:
	$(PYTHON) benchmarks/bench_tables.py

bench-sql:
	$(PYTHON) benchmarks/bench_sql.py

bench-store:
	$(PYTHON) benchmarks/bench_store.py

# one benchmark at a time, even under `make -j bench`: they measure the same disk and CPUs
ifneq ($(filter bench,$(MAKECMDGOALS)),)
bench-segmentdb: bench-writers
bench-s3: bench-segmentdb
bench-tables: bench-s3
bench-sql: bench-tables
bench-store: bench-sql
endif

clean:
	rm -rf $(VENV) .venv-bench .pytest_cache .mypy_cache .ruff_cache *.egg-info
