# Development environments and checks.
#
#   make test    lint + type-check + tests on Airflow 2.11 and Airflow 3.x
#   make demo    run the demo in the Airflow 3 environment
#
# Only python3 (with venv), pip and make are needed; everything else goes into .tools/ and the
# .venv-af2/ / .venv-af3/ virtualenvs. Setup is idempotent: stamp files inside each folder mean a
# second run skips installation unless pyproject.toml changed.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
# Interpreter the virtualenvs are built from (any python >= 3.10 that uv can find).
VENV_PYTHON ?= $(PYTHON)

AF2_SPEC ?= apache-airflow>=2.11.2,<2.12
AF3_SPEC ?= apache-airflow>=3.3,<3.4

TOOLS := .tools
UV := $(TOOLS)/bin/uv
AF2 := .venv-af2
AF3 := .venv-af3
RESULTS := .test-results

# uv must never try to download a Python build; use the interpreter that is installed.
export UV_PYTHON_DOWNLOADS := never
export UV_NO_PROGRESS := 1

PYTEST_ARGS ?=
# tests/cluster needs a real cluster; it has its own target.
PYTEST_PATHS := tests --ignore=tests/cluster

.PHONY: help setup setup-af2 setup-af3 lint format typecheck test test-af2 test-af3 \
        test-cluster demo bench clean

help:
	@echo "make demo          run the example DAGs against a simulated cluster (Airflow 3)"
	@echo "make test          lint, type-check and test on Airflow 2.11 and 3.x"
	@echo "make lint          ruff check + ruff format --check"
	@echo "make format        ruff format + ruff check --fix"
	@echo "make typecheck     mypy airflow_k8s_jobs"
	@echo "make test-af2      tests on Airflow 2.11 only"
	@echo "make test-af3      tests on Airflow 3.x only"
	@echo "make test-cluster  tests against a real cluster (needs KUBECONFIG)"
	@echo "make bench         benchmarks against the anchors (results in benchmarks/results/)"
	@echo "make clean         remove environments and caches"

# --- environments -------------------------------------------------------------------------

$(UV):
	@echo ">> bootstrapping uv into $(TOOLS)/"
	rm -rf $(TOOLS)
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv

# $(1) = venv folder, $(2) = Airflow requirement
define make_venv
	@echo ">> setting up $(1) with $(2)"
	@if [ ! -x $(1)/bin/python ]; then $(UV) venv --quiet --python $(VENV_PYTHON) $(1); fi
	$(UV) pip install --quiet --python $(1)/bin/python "$(2)" -e ".[dev]"
	@$(1)/bin/python -c 'import importlib.metadata as m; \
print("   " + ", ".join(p + " " + m.version(p) for p in ("apache-airflow", \
"apache-airflow-providers-cncf-kubernetes", "kubernetes", "kubernetes_asyncio", "aiohttp", \
"pytest", "pytest-asyncio")))'
	@touch $(1)/.installed
endef

$(AF2)/.installed: pyproject.toml | $(UV)
	$(call make_venv,$(AF2),$(AF2_SPEC))

$(AF3)/.installed: pyproject.toml | $(UV)
	$(call make_venv,$(AF3),$(AF3_SPEC))

setup-af2: $(AF2)/.installed
setup-af3: $(AF3)/.installed
setup: setup-af2 setup-af3

# --- checks -------------------------------------------------------------------------------

lint: setup-af3
	$(AF3)/bin/ruff check .
	$(AF3)/bin/ruff format --check .

format: setup-af3
	$(AF3)/bin/ruff format .
	$(AF3)/bin/ruff check --fix .

typecheck: setup-af3
	$(AF3)/bin/mypy airflow_k8s_jobs

test-af2: setup-af2
	@mkdir -p $(RESULTS)
	scripts/run-pytest.sh $(AF2) $(RESULTS)/af2 $(PYTEST_PATHS) $(PYTEST_ARGS)

test-af3: setup-af3
	@mkdir -p $(RESULTS)
	scripts/run-pytest.sh $(AF3) $(RESULTS)/af3 $(PYTEST_PATHS) $(PYTEST_ARGS)

test-cluster: setup-af3
	$(AF3)/bin/python -m pytest tests/cluster $(PYTEST_ARGS)

# Runs every step even when an earlier one fails, then prints one line per step and fails if
# any step failed.
test: setup
	@rm -rf $(RESULTS); mkdir -p $(RESULTS); \
	lint=OK; types=OK; \
	echo ">> ruff"; \
	{ $(AF3)/bin/ruff check . && $(AF3)/bin/ruff format --check .; } || lint=FAILED; \
	echo ">> mypy"; \
	$(AF3)/bin/mypy airflow_k8s_jobs || types=FAILED; \
	echo ">> pytest on $(AF2)"; \
	scripts/run-pytest.sh $(AF2) $(RESULTS)/af2 $(PYTEST_PATHS) $(PYTEST_ARGS) || true; \
	echo ">> pytest on $(AF3)"; \
	scripts/run-pytest.sh $(AF3) $(RESULTS)/af3 $(PYTEST_PATHS) $(PYTEST_ARGS) || true; \
	echo; echo "==== summary ===="; \
	echo "ruff:            $$lint"; \
	echo "mypy:            $$types"; \
	ok=1; [ $$lint = OK ] && [ $$types = OK ] || ok=0; \
	passed=0; failed=0; skipped=0; \
	for v in af2 af3; do \
	  if [ -f $(RESULTS)/$$v ]; then cat $(RESULTS)/$$v; \
	    read rc p f e s < $(RESULTS)/$$v.counts; \
	    passed=$$((passed + p)); failed=$$((failed + f + e)); skipped=$$((skipped + s)); \
	    [ $$rc -eq 0 ] || ok=0; \
	  else echo "$$v: pytest did not run: FAILED"; ok=0; fi; \
	done; \
	echo "tests: $$passed passed, $$failed failed, $$skipped skipped"; \
	[ $$ok -eq 1 ]

# --- demo ---------------------------------------------------------------------------------

# Runs every DAG in example_dags/ with `airflow dags test` against a simulated cluster; scratch
# files (AIRFLOW_HOME, kubeconfig, one log per DAG) go to .demo/. DEMO_ARGS="--dag gpu_scale_up"
# runs one DAG; `$(AF3)/bin/python -m airflow_k8s_jobs.demo --help` lists the options.
DEMO_ARGS ?=

demo: setup-af3
	$(AF3)/bin/python -m airflow_k8s_jobs.demo --workdir .demo --dags-folder example_dags $(DEMO_ARGS)

# --- benchmarks ---------------------------------------------------------------------------

bench: setup-af3
	$(AF3)/bin/python benchmarks/argo_waiting.py --output benchmarks/results/argo_waiting.md

# --- housekeeping -------------------------------------------------------------------------

clean:
	rm -rf $(TOOLS) $(AF2) $(AF3) $(RESULTS) .mypy_cache .ruff_cache .pytest_cache \
	       build dist *.egg-info
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
