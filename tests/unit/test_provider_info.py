"""The package registers itself with real Airflow as a provider."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def test_only_the_simulated_cluster_declares_a_pytest_plugin() -> None:
    """The provider loads nothing into users' pytest sessions; the simulated cluster's own
    distribution (the `[testing]` extra) brings the fixtures."""
    plugins = {
        (ep.dist.name, ep.name, ep.value)
        for ep in importlib.metadata.entry_points(group="pytest11")
        if ep.dist is not None and ep.dist.name in (DIST_NAME, "simulated-k8s-cluster")
    }
    assert plugins == {
        ("simulated-k8s-cluster", "simulated_k8s_cluster", "simulated_k8s_cluster.pytest_plugin")
    }


def airflow_providers_json(home: Path, command: str) -> list[dict[str, Any]]:
    """``airflow providers <command> --output json`` as a plain user setup runs it: a fresh
    AIRFLOW_HOME and no unit-test mode (in which Airflow logs to stdout, into the JSON)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", command, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    json_lines = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert json_lines, result.stdout
    rows: list[dict[str, Any]] = json.loads(json_lines[-1])
    return rows


@pytest.mark.slow
def test_airflow_cli_lists_provider(tmp_path: Path) -> None:
    providers = {p["package_name"]: p for p in airflow_providers_json(tmp_path, "list")}
    assert DIST_NAME in providers, sorted(providers)
    assert providers[DIST_NAME]["version"] == airflow_k8s_jobs.__version__


TRIGGER_MODULES = {"airflow_k8s_jobs.triggers.jobs", "airflow_k8s_jobs.triggers.argo"}


def test_provider_info_lists_triggers() -> None:
    from airflow.triggers.base import BaseTrigger

    info = get_provider_info()
    (entry,) = info["triggers"]
    integrations = {i["integration-name"] for i in info["integrations"]}
    assert entry["integration-name"] in integrations
    assert set(entry["python-modules"]) == TRIGGER_MODULES
    # Every module defines one of our triggers, and every trigger we ship is listed.
    listed = {
        obj
        for name in entry["python-modules"]
        for obj in vars(importlib.import_module(name)).values()
        if isinstance(obj, type) and issubclass(obj, BaseTrigger) and obj.__module__ == name
    }
    assert {cls.__name__ for cls in listed} == {"KubeJobTrigger", "ArgoWorkflowTrigger"}
    shipped = {
        f"airflow_k8s_jobs.triggers.{path.stem}"
        for path in (Path(airflow_k8s_jobs.__file__).parent / "triggers").glob("*.py")
        if path.stem not in ("__init__", "base")
    }
    assert shipped == TRIGGER_MODULES


def test_connection_type_is_testable() -> None:
    try:  # Airflow 3.2+
        from airflow.sdk.providers_manager_runtime import (
            ProvidersManagerTaskRuntime as Manager,
        )
    except ImportError:
        from airflow.providers_manager import ProvidersManager as Manager  # type: ignore[assignment]

    from airflow_k8s_jobs.clusters.hook import KubeClusterHook

    (conn_type,) = get_provider_info()["connection-types"]
    assert conn_type["hook-class-name"] == "airflow_k8s_jobs.clusters.hook.KubeClusterHook"
    # No schema key says "testable": Airflow derives it from the hook class.
    hook_info = Manager().hooks[conn_type["connection-type"]]
    assert hook_info is not None
    assert hook_info.hook_class_name == conn_type["hook-class-name"]
    assert hook_info.connection_testable is True
    assert callable(KubeClusterHook.test_connection)


@pytest.mark.slow
def test_airflow_cli_lists_triggers(tmp_path: Path) -> None:
    ours = [
        t for t in airflow_providers_json(tmp_path, "triggers") if t["package_name"] == DIST_NAME
    ]
    # Airflow lists the modules of provider info's "python-modules" under "class".
    assert {t["class"] for t in ours} == TRIGGER_MODULES, ours
    assert {t["integration_name"] for t in ours} == {"Kubernetes Jobs"}
    classes = {
        name
        for t in ours
        for name, obj in vars(importlib.import_module(t["class"])).items()
        if name.endswith("Trigger") and getattr(obj, "__module__", "") == t["class"]
    }
    assert classes == {"KubeJobTrigger", "ArgoWorkflowTrigger"}
