# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv if it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q --disable-pip-version-check

.PHONY: demo test lint slow fast clean

$(VENV)/.stamp-base: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements.txt
	$(PIP) --no-deps -e .
	touch $@

$(VENV)/.stamp-dev: $(VENV)/.stamp-base requirements-dev.txt requirements-dev-nodeps.txt
	$(PIP) -r requirements-dev.txt
	$(PIP) --no-deps -r requirements-dev-nodeps.txt
	touch $@

demo: $(VENV)/.stamp-base
	$(PY) -m zoejax.cli.demo --output demo_out

# Two workers, one test file each at a time (module fixtures are built once; files never share a worker's state).
test: $(VENV)/.stamp-dev
	$(PY) -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=10 tests

fast: $(VENV)/.stamp-dev
	$(PY) -m pytest -q -m "not slow" tests

lint: $(VENV)/.stamp-dev
	$(VENV)/bin/ruff check zoejax data_pipelines configs tests benchmarks

clean:
	rm -rf $(VENV) demo_out
