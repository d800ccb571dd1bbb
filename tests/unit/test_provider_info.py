"""The package registers itself with real Airflow as a provider."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import airflow_k8s_jobs
from airflow_k8s_jobs.get_provider_info import get_provider_info

DIST_NAME = "airflow-k8s-jobs"


def _provider_entry_points() -> list[importlib.metadata.EntryPoint]:
    return [
        ep
        for ep in importlib.metadata.entry_points(group="apache_airflow_provider")
        if ep.dist is not None and ep.dist.name == DIST_NAME
    ]


def test_entry_point_resolves_to_get_provider_info() -> None:
    (ep,) = _provider_entry_points()
    assert ep.name == "provider_info"
    assert ep.load() is get_provider_info


def test_provider_info_matches_distribution() -> None:
    info = get_provider_info()
    # Airflow refuses a provider whose package-name differs from the distribution name.
    assert info["package-name"] == DIST_NAME
    assert info["versions"] == [airflow_k8s_jobs.__version__]
    assert importlib.metadata.version(DIST_NAME) == airflow_k8s_jobs.__version__
    assert info["name"]
    assert info["description"]


def test_provider_info_validates_against_installed_airflow_schema() -> None:
    import airflow
    import jsonschema

    schema_path = Path(airflow.__file__).parent / "provider_info.schema.json"
    schema = json.loads(schema_path.read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_providers_manager_registers_package() -> None:
    from airflow.providers_manager import ProvidersManager

    providers = ProvidersManager().providers
    assert DIST_NAME in providers
    assert providers[DIST_NAME].version == airflow_k8s_jobs.__version__


def test_pytest_plugin_entry_point_is_declared() -> None:
    eps = [
        ep
        for ep in importlib.metadata.entry_points(group="pytest11")
        if ep.dist is not None and ep.dist.name == DIST_NAME
    ]
    assert [(ep.name, ep.value) for ep in eps] == [
        ("airflow_k8s_jobs", "airflow_k8s_jobs.testing.pytest_plugin")
    ]


@pytest.mark.slow
def test_airflow_cli_lists_provider(tmp_path: Path) -> None:
    # A plain user setup: a fresh AIRFLOW_HOME and no unit-test mode (in unit-test mode both
    # Airflow 2 and 3 log to stdout, which would corrupt the JSON output).
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(AIRFLOW_HOME=str(tmp_path), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    json_lines = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert json_lines, result.stdout
    providers = {p["package_name"]: p for p in json.loads(json_lines[-1])}
    assert DIST_NAME in providers, sorted(providers)
    assert providers[DIST_NAME]["version"] == airflow_k8s_jobs.__version__
