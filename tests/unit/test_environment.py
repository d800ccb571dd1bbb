"""The test environment itself: upstream releases that break Airflow are caught here first.

These fail when a pin in constraints/ is lifted before Airflow can do without it, with a
message that says which pin and why, instead of as "connection not defined" in every DAG test.
"""

from __future__ import annotations

import os

from airflow_k8s_jobs.clusters import KubeClusterHook


def test_a_fernet_key_is_configured() -> None:
    assert os.environ.get("AIRFLOW__CORE__FERNET_KEY"), "tests must run as deployments do"


def test_fernet_works_with_the_installed_cryptography() -> None:
    """Airflow 2.11 / 3.1 with cryptography >= 51 fail here (see constraints/legacy-fernet.txt)."""
    from airflow.models.crypto import get_fernet

    fernet = get_fernet()
    assert fernet.decrypt(fernet.encrypt(b"secret")) == b"secret"


def test_a_connection_is_read_through_the_secrets_backends(monkeypatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ENV_CHECK",
        '{"conn_type": "k8sjobs", "extra": {"kubeconfig_path": "/k", "namespace": "batch"}}',
    )
    settings = KubeClusterHook(cluster_conn_id="env_check").settings
    assert settings.default_namespace == "batch"
    assert settings.kubeconfig_path == "/k"
