"""Provider metadata read by Airflow's ``ProvidersManager``.

Airflow finds this function through the ``apache_airflow_provider`` entry point
(name ``provider_info``) declared in ``pyproject.toml``. The returned dict is validated
against Airflow's ``provider_info.schema.json``.
"""

from __future__ import annotations

from typing import Any

from airflow_k8s_jobs import __version__
from airflow_k8s_jobs.clusters.fields import conn_fields, ui_field_behaviour
from airflow_k8s_jobs.clusters.settings import CONN_TYPE

PACKAGE_NAME = "airflow-k8s-jobs"
INTEGRATION_NAME = "Kubernetes Jobs"


def get_provider_info() -> dict[str, Any]:
    """Return this provider's metadata in the shape Airflow's provider schema expects."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "Kubernetes Jobs and Argo Workflows",
        "description": (
            "Run Kubernetes Jobs and Argo Workflows on a separate cluster from Airflow "
            "and wait for them without holding a worker slot."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION_NAME,
                "external-doc-url": "https://kubernetes.io/docs/concepts/workloads/controllers/job/",
                "tags": ["software"],
            }
        ],
        "operators": [
            {
                "integration-name": INTEGRATION_NAME,
                "python-modules": [
                    "airflow_k8s_jobs.operators.jobs",
                    "airflow_k8s_jobs.operators.cleanup",
                    "airflow_k8s_jobs.operators.argo",
                ],
            }
        ],
        "hooks": [
            {
                "integration-name": INTEGRATION_NAME,
                "python-modules": ["airflow_k8s_jobs.clusters.hook"],
            }
        ],
        # Listed by `airflow providers triggers`; the triggerer imports the classes itself.
        "triggers": [
            {
                "integration-name": INTEGRATION_NAME,
                "python-modules": [
                    "airflow_k8s_jobs.triggers.jobs",
                    "airflow_k8s_jobs.triggers.argo",
                ],
            }
        ],
        # Airflow 2 only re-creates a serialized task's links from registered classes.
        "extra-links": [
            "airflow_k8s_jobs.operators.links.GkeJobLink",
            "airflow_k8s_jobs.operators.links.GkeJobLogsLink",
            "airflow_k8s_jobs.operators.links.ArgoWorkflowLink",
        ],
        # Airflow 3.2+ builds the connection form from "conn-fields" / "ui-field-behaviour"
        # without importing the hook; Airflow 2 asks the hook and ignores these keys. Neither
        # schema has a "testable" key: Airflow marks the type testable because the hook class
        # has test_connection (HookInfo.connection_testable).
        "connection-types": [
            {
                "hook-class-name": "airflow_k8s_jobs.clusters.hook.KubeClusterHook",
                "hook-name": "Kubernetes cluster (airflow-k8s-jobs)",
                "connection-type": CONN_TYPE,
                "conn-fields": conn_fields(),
                "ui-field-behaviour": ui_field_behaviour(),
            }
        ],
    }
