"""Provider metadata read by Airflow's ``ProvidersManager``.

Airflow finds this function through the ``apache_airflow_provider`` entry point
(name ``provider_info``) declared in ``pyproject.toml``. The returned dict is validated
against Airflow's ``provider_info.schema.json``; keys for connection types, hooks,
operators and triggers are added as those parts of the package land.
"""

from __future__ import annotations

from typing import Any

from airflow_k8s_jobs import __version__

PACKAGE_NAME = "airflow-k8s-jobs"


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
    }
