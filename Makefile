# Development environments and checks.
#
#   make test    lint + type-check + the whole suite on Airflow 2.11 and the newest 3.x, and a
#                fast lane on package sets pinned like Cloud Composer images
#   make demo    run the demo in the Airflow 3 environment
#
# Only python3 (with venv), pip and make are needed; everything else goes into .tools/ and the
# .venv-*/ virtualenvs. Setup is idempotent: a stamp file inside each folder means a second run
# skips installation unless pyproject.toml or the constraints changed.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3

# An interpreter of a given minor version: on PATH, or one pyenv installed; else $(PYTHON).
find_python = $(or $(shell for p in python$(1) $(HOME)/.pyenv/versions/$(1).*/bin/python$(1); do \
    "$$p" -c '' 2>/dev/null && command -v "$$p" && break; done),$(PYTHON))

TOOLS := .tools
UV := $(TOOLS)/bin/uv
RESULTS := .test-results

# uv must never try to download a Python build; use the interpreters that are installed.
export UV_PYTHON_DOWNLOADS := never
export UV_NO_PROGRESS := 1

# --- the environments ------------------------------------------------------------------------
#
# Full suite:
#   af2      Airflow 2.11 (newest 2.11.x) with the newest providers
#   af3      the newest Airflow 3.x with the newest providers
# Fast lane, pinned like the Composer images users run (preinstalled-packages lists):
#   composer-2.11.1  Composer 2.16 / 3: Airflow 2.11.1, cncf-kubernetes 10.11.1,
#                    common-compat 1.13.1, google provider 19.x (kubernetes 34.1)
#   composer-3.1.7   composer-3-airflow-3.1.7-build.0: cncf-kubernetes 10.11.1,
#                    common-compat 1.13.1 (kubernetes 34.1, kubernetes_asyncio 34.3)
#   composer-3.3.1   composer-3-airflow-3.3.1-build.0: cncf-kubernetes 10.14.0,
#                    common-compat 1.18.0 (kubernetes 35.0)
#   lowest           every floor pyproject.toml declares, at once (uv --resolution lowest-direct)
#
# Each entry: the Python minor version, the requirements, the constraints file (or none).
ENV_af2_PY := 3.11
ENV_af2_REQ := "apache-airflow>=2.11.2,<2.12" -e ./simulator -e ".[dev]"
ENV_af2_CONSTRAINTS := constraints/legacy-fernet.txt

ENV_af3_PY := 3.12
ENV_af3_REQ := "apache-airflow>=3.3,<3.4" -e ./simulator -e ".[dev]"
ENV_af3_CONSTRAINTS :=

ENV_composer-2.11.1_PY := 3.11
ENV_composer-2.11.1_REQ := apache-airflow==2.11.1 apache-airflow-providers-cncf-kubernetes==10.11.1 \
    apache-airflow-providers-common-compat==1.13.1 "apache-airflow-providers-google>=19,<20" \
    -e ./simulator -e ".[dev]"
ENV_composer-2.11.1_CONSTRAINTS := constraints/legacy-fernet.txt

ENV_composer-3.1.7_PY := 3.11
ENV_composer-3.1.7_REQ := apache-airflow==3.1.7 apache-airflow-providers-cncf-kubernetes==10.11.1 \
    apache-airflow-providers-common-compat==1.13.1 -e ./simulator -e ".[dev]"
ENV_composer-3.1.7_CONSTRAINTS := constraints/legacy-fernet.txt

ENV_composer-3.3.1_PY := 3.11
ENV_composer-3.3.1_REQ := apache-airflow==3.3.1 apache-airflow-providers-cncf-kubernetes==10.14.0 \
    apache-airflow-providers-common-compat==1.18.0 -e ./simulator -e ".[dev]"
ENV_composer-3.3.1_CONSTRAINTS :=

# The package alone at its floors; then the test tools at their newest (they are not floors
# of ours, and pytest-asyncio's oldest releases lack what the suite's configuration uses).
ENV_lowest_PY := 3.10
ENV_lowest_REQ := --resolution lowest-direct -e ./simulator -e ".[testing]"
ENV_lowest_THEN := pytest pytest-asyncio pytest-timeout pytest-xdist
ENV_lowest_CONSTRAINTS := constraints/legacy-fernet.txt

# What mypy checks: the provider and the simulated cluster (its own distribution, simulator/).
TYPED := airflow_k8s_jobs simulator/simulated_k8s_cluster

FULL_ENVS := af2 af3
COMPAT_ENVS := composer-2.11.1 composer-3.1.7 composer-3.3.1 lowest
ALL_ENVS := $(FULL_ENVS) $(COMPAT_ENVS)
venv = .venv-$(1)

# What the fast lane runs on the pinned environments: imports and unit tests, the trigger and
# hook integration tests, and real Airflow (`airflow dags test`, fernet key set) running a
# deferrable Job DAG and the Argo seed DAG.
FAST_LANE := tests/unit tests/integration/test_job_trigger.py \
    tests/integration/test_argo_trigger.py tests/integration/test_clusters_hook.py \
    tests/integration/test_job_operator.py tests/integration/test_gcp_connection_identity.py \
    tests/e2e/test_job_dags.py \
    tests/integration/test_demo.py::test_demo_runs_a_job_dag_and_an_argo_dag

# tests/cluster needs a real cluster: the upstream control plane that scripts/real-cluster
# starts (built from Go modules by scripts/build-real-cluster), or any cluster via KUBECONFIG.
# tests/packaging builds the wheels and installs them into fresh virtualenvs: once, on af3.
# tests/deployment runs Airflow as deployed (scheduler, triggerer, LocalExecutor, PostgreSQL):
# its own step, on both full environments.
FULL_SUITE := tests --ignore=tests/cluster --ignore=tests/packaging --ignore=tests/deployment
PACKAGING_TESTS := tests/packaging
DEPLOYMENT_TESTS := tests/deployment
REAL_CLUSTER_TESTS := tests/cluster
# What real Airflow runs on the real control plane: also on Airflow 2.11.
REAL_CLUSTER_AIRFLOW_TESTS := tests/cluster/test_airflow_on_real_control_plane.py \
    tests/cluster/test_scenarios_on_real_control_plane.py \
    tests/cluster/test_kueue_on_real_control_plane.py \
    tests/cluster/test_deployment_on_real_control_plane.py
# pytest-xdist workers per suite ("0" runs in one process); --durations lists the slowest tests.
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=
pytest_opts = $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile) \
    --durations=15 $(PYTEST_ARGS)

.PHONY: help setup lint format typecheck test test-fast test-packaging test-cluster real-cluster \
        demo bench clean test-deployment $(addprefix setup-,$(ALL_ENVS)) $(addprefix test-,$(ALL_ENVS))

help:
	@echo "make demo          run the example DAGs against a simulated cluster (Airflow 3)"
	@echo "make test          lint, type-check, the suite on Airflow 2.11 and 3.x, and the fast"
	@echo "                   lane on Composer-like package sets"
	@echo "make test-fast     the fast lane on the Airflow 3 environment only (local use)"
	@echo "make test-packaging  build both wheels, install them into fresh virtualenvs"
	@echo "make test-deployment  tests/deployment: Airflow deployed (scheduler, triggerer, PostgreSQL)"
	@echo "make test-ENV      the full suite on one environment: $(FULL_ENVS)"
	@echo "                   or the fast lane on one of: $(COMPAT_ENVS)"
	@echo "make lint          ruff check + ruff format --check + the import contracts"
	@echo "make format        ruff format + ruff check --fix"
	@echo "make typecheck     mypy: the provider and the simulated cluster"
	@echo "make real-cluster  build the upstream control plane (scripts/real-cluster starts it)"
	@echo "make test-cluster  tests/cluster: the upstream control plane, and any cluster in KUBECONFIG"
	@echo "make bench         benchmarks against the anchors (results in benchmarks/results/)"
	@echo "make clean         remove environments and caches"

# --- setup ---------------------------------------------------------------------------------

$(UV):
	@echo ">> bootstrapping uv into $(TOOLS)/"
	rm -rf $(TOOLS)
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv

# $(1) = environment name. Packages are installed with their bytecode compiled: where
# PYTHONDONTWRITEBYTECODE is set (as on CI machines), Python never caches it, and every process
# would compile Airflow's modules again (about 20 s of CPU per `import airflow.models`).
define env_rules
$(call venv,$(1))/.installed: pyproject.toml airflow_k8s_jobs/__init__.py \
    simulator/pyproject.toml simulator/simulated_k8s_cluster/__init__.py $(ENV_$(1)_CONSTRAINTS) | $(UV)
	@echo ">> setting up $(call venv,$(1))"
	@py=$(call find_python,$(ENV_$(1)_PY)); \
	if [ ! -x $(call venv,$(1))/bin/python ] || [ "$$$$($(call venv,$(1))/bin/python -c \
	    'import sys; print("%d.%d" % sys.version_info[:2])')" != "$$$$($$$$py -c \
	    'import sys; print("%d.%d" % sys.version_info[:2])')" ]; then \
	  rm -rf $(call venv,$(1)); $(UV) venv --quiet --python $$$$py $(call venv,$(1)); fi
	$(UV) pip install --quiet --compile-bytecode --python $(call venv,$(1))/bin/python \
	  $(if $(ENV_$(1)_CONSTRAINTS),-c $(ENV_$(1)_CONSTRAINTS)) $(ENV_$(1)_REQ)
	$(if $(ENV_$(1)_THEN),$(UV) pip install --quiet --compile-bytecode --python $(call venv,$(1))/bin/python \
	  $(if $(ENV_$(1)_CONSTRAINTS),-c $(ENV_$(1)_CONSTRAINTS)) $(ENV_$(1)_THEN))
	@$(call venv,$(1))/bin/python scripts/versions.py > $(call venv,$(1))/versions.txt
	@sed 's/^/   /' $(call venv,$(1))/versions.txt
	@touch $$@

setup-$(1): $(call venv,$(1))/.installed
endef
$(foreach e,$(ALL_ENVS),$(eval $(call env_rules,$(e))))

setup: $(addprefix setup-,$(ALL_ENVS))

# --- checks --------------------------------------------------------------------------------

lint: setup-af3
	$(call venv,af3)/bin/ruff check .
	$(call venv,af3)/bin/ruff format --check .
	$(call venv,af3)/bin/lint-imports --no-cache
	$(call venv,af3)/bin/mypy $(TYPED)

format: setup-af3
	$(call venv,af3)/bin/ruff format .
	$(call venv,af3)/bin/ruff check --fix .

typecheck: setup-af3
	$(call venv,af3)/bin/mypy $(TYPED)

$(addprefix test-,$(FULL_ENVS)): test-%: setup-%
	@mkdir -p $(RESULTS)
	scripts/run-pytest.sh $(call venv,$*) $(RESULTS)/$* $(FULL_SUITE) $(pytest_opts)

$(addprefix test-,$(COMPAT_ENVS)): test-%: setup-%
	@mkdir -p $(RESULTS)
	scripts/run-pytest.sh $(call venv,$*) $(RESULTS)/$* $(FAST_LANE) $(pytest_opts)

# PostgreSQL (Debian's package, installed when missing) backs the deployments' metadata database.
test-deployment: setup-af2 setup-af3
	@mkdir -p $(RESULTS)
	scripts/postgres ensure
	for e in $(FULL_ENVS); do \
	  LABEL=deployment-$$e scripts/run-pytest.sh .venv-$$e $(RESULTS)/deployment-$$e \
	    $(DEPLOYMENT_TESTS) $(pytest_opts) || exit 1; done

test-packaging: setup-af3
	@mkdir -p $(RESULTS)
	LABEL=packaging scripts/run-pytest.sh $(call venv,af3) $(RESULTS)/packaging \
	  $(PACKAGING_TESTS) $(pytest_opts)

test-fast: setup-af3
	@mkdir -p $(RESULTS)
	scripts/run-pytest.sh $(call venv,af3) $(RESULTS)/fast $(FAST_LANE) $(pytest_opts)

# The upstream control plane and Kueue's manager (Go; kept under .tools/, so after uv's setup,
# which may reset .tools/). A no-op when nothing changed. Without Go the tests in tests/cluster skip and say so.
real-cluster: | $(UV)
	scripts/build-real-cluster

test-cluster: setup-af3 real-cluster
	$(call venv,af3)/bin/python -m pytest tests/cluster $(PYTEST_ARGS)

# Runs every step even when an earlier one fails, then prints one line per step and fails if
# any step failed.
test: setup
	@rm -rf $(RESULTS); mkdir -p $(RESULTS); started=$$(date +%s); \
	lint=OK; types=OK; \
	echo ">> ruff"; \
	{ $(call venv,af3)/bin/ruff check . && $(call venv,af3)/bin/ruff format --check . \
	  && $(call venv,af3)/bin/lint-imports --no-cache; } || lint=FAILED; \
	echo ">> mypy"; \
	$(call venv,af3)/bin/mypy $(TYPED) || types=FAILED; \
	echo ">> the Compose loader that checks deploy/local (Go; the tests skip without it)"; \
	if command -v go >/dev/null; then scripts/build-composecheck || true; fi; \
	for e in $(FULL_ENVS); do \
	  echo ">> pytest, the whole suite, on .venv-$$e"; \
	  scripts/run-pytest.sh .venv-$$e $(RESULTS)/$$e $(FULL_SUITE) $(pytest_opts) || true; \
	done; \
	for e in $(COMPAT_ENVS); do \
	  echo ">> pytest, the fast lane, on .venv-$$e"; \
	  scripts/run-pytest.sh .venv-$$e $(RESULTS)/$$e $(FAST_LANE) $(pytest_opts) || true; \
	done; \
	echo ">> the wheels: built, installed into fresh virtualenvs, the README's offline DAG test"; \
	LABEL=packaging scripts/run-pytest.sh .venv-af3 $(RESULTS)/packaging \
	  $(PACKAGING_TESTS) $(pytest_opts) || true; \
	echo ">> real Airflow deployments: scheduler, triggerer, LocalExecutor, PostgreSQL"; \
	scripts/postgres ensure || true; \
	for e in $(FULL_ENVS); do \
	  LABEL=deployment-$$e scripts/run-pytest.sh .venv-$$e $(RESULTS)/deployment-$$e \
	    $(DEPLOYMENT_TESTS) $(pytest_opts) || true; \
	done; \
	echo ">> the upstream control plane: build, then tests/cluster on .venv-af3"; \
	if ! command -v go >/dev/null || scripts/build-real-cluster; then \
	  LABEL=real-cluster scripts/run-pytest.sh .venv-af3 $(RESULTS)/real-cluster \
	    $(REAL_CLUSTER_TESTS) $(pytest_opts) || true; \
	  echo ">> the upstream control plane: the Airflow scenarios on .venv-af2"; \
	  LABEL=real-cluster-af2 scripts/run-pytest.sh .venv-af2 $(RESULTS)/real-cluster-af2 \
	    $(REAL_CLUSTER_AIRFLOW_TESTS) $(pytest_opts) || true; fi; \
	echo; echo "==== summary ===="; \
	echo "ruff, imports:   $$lint"; \
	echo "mypy:            $$types"; \
	ok=1; [ $$lint = OK ] && [ $$types = OK ] || ok=0; \
	passed=0; failed=0; skipped=0; \
	for e in $(ALL_ENVS) packaging deployment-af2 deployment-af3 real-cluster real-cluster-af2; do \
	  if [ -f $(RESULTS)/$$e ]; then cat $(RESULTS)/$$e; \
	    read rc p f x s < $(RESULTS)/$$e.counts; \
	    passed=$$((passed + p)); failed=$$((failed + f + x)); skipped=$$((skipped + s)); \
	    [ $$rc -eq 0 ] || ok=0; \
	  else echo "$$e: pytest did not run: FAILED"; ok=0; fi; \
	done; \
	echo "time:            $$(( $$(date +%s) - started ))s"; \
	echo "tests: $$passed passed, $$failed failed, $$skipped skipped"; \
	[ $$ok -eq 1 ]

# --- demo ---------------------------------------------------------------------------------

# Runs every DAG in example_dags/ with `airflow dags test` against a simulated cluster; scratch
# files (AIRFLOW_HOME, kubeconfig, one log per DAG) go to .demo/. DEMO_ARGS="--dag gpu_scale_up"
# runs one DAG; `$(call venv,af3)/bin/python scripts/demo.py --help` lists the options.
DEMO_ARGS ?=

demo: setup-af3
	$(call venv,af3)/bin/python scripts/demo.py --workdir .demo --dags-folder example_dags $(DEMO_ARGS)

# --- benchmarks ---------------------------------------------------------------------------

# The Argo release whose examples/ folder `make bench` runs (the newest the module proxy serves).
ARGO_EXAMPLES_VERSION ?= v4.0.5

# The Google provider's Job trigger runs in the Composer-like environment that has it.
bench: setup-af2 setup-af3 setup-composer-2.11.1
	$(UV) pip install --quiet --python $(call venv,af3)/bin/python -e ".[bench]"
	$(call venv,af3)/bin/python benchmarks/triggers_side_by_side.py \
	  --google-python $(call venv,composer-2.11.1)/bin/python
	$(call venv,af3)/bin/python benchmarks/readme_table.py --readme README.md
	$(call venv,af3)/bin/python benchmarks/argo_waiting.py --output benchmarks/results/argo_waiting.md
	$(call venv,af3)/bin/python benchmarks/job_waiting.py --output benchmarks/results/job_waiting.md
	$(call venv,af3)/bin/python benchmarks/simulated_cluster_scale.py \
	  --output benchmarks/results/simulated_cluster_scale.md
	$(call venv,af3)/bin/python benchmarks/cleanup_scale.py \
	  --output benchmarks/results/cleanup_scale.md
	$(call venv,af3)/bin/python benchmarks/token_refreshes.py \
	  --output benchmarks/results/token_refreshes.md
	$(call venv,af3)/bin/python benchmarks/fanout_logs.py \
	  --output benchmarks/results/fanout_logs.md
	@# Airflow's own triggerer in a real deployment (PostgreSQL, scheduler, LocalExecutor).
	scripts/postgres ensure
	$(call venv,af3)/bin/python benchmarks/real_triggerer.py --n 200 --sides ours,cncf \
	  --output benchmarks/results/real_triggerer.md
	@# 1,000 tasks waiting at once: Jobs created beforehand, tasks started from their triggers.
	$(call venv,af3)/bin/python benchmarks/real_triggerer.py --seed --n 1000 --sides ours,cncf \
	  --output benchmarks/results/real_triggerer_1000_airflow3.md
	$(call venv,af2)/bin/python benchmarks/real_triggerer.py --seed --n 1000 --sides ours,cncf \
	  --output benchmarks/results/real_triggerer_1000_airflow2.md
	@# Argo's own examples/ (from the Go module proxy) on the simulated Argo controller.
	if command -v go >/dev/null; then \
	  dir=$$(go mod download -json github.com/argoproj/argo-workflows/v4@$(ARGO_EXAMPLES_VERSION) \
	    | $(call venv,af3)/bin/python -c 'import json, sys; print(json.load(sys.stdin)["Dir"])'); \
	  $(call venv,af3)/bin/python scripts/argo-examples --examples "$$dir/examples" \
	    > benchmarks/results/argo_examples.md; \
	  grep -E "^(tested|all)" benchmarks/results/argo_examples.md; fi

# --- housekeeping -------------------------------------------------------------------------

clean:
	rm -rf $(TOOLS) .venv-* $(RESULTS) .mypy_cache .ruff_cache .pytest_cache \
	       build dist *.egg-info
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
