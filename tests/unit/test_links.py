"""The operators' extra links: URL building (pure), the links read from XCom, and their
registration with Airflow as provider extra links."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from airflow_k8s_jobs import ArgoWorkflowOperator, KubeJobOperator
from airflow_k8s_jobs.clusters import ClusterSettings
from airflow_k8s_jobs.get_provider_info import get_provider_info
from airflow_k8s_jobs.operators import links
from airflow_k8s_jobs.operators.links import (
    ArgoWorkflowLink,
    GkeJobLink,
    GkeJobLogsLink,
    argo_ui_base,
    argo_workflow_url,
    gke_job_logs_query,
    gke_job_logs_url,
    gke_job_url,
    job_link_data,
    workflow_link_data,
)

GKE_EXTRAS = {
    "project": "acme-data-prod",
    "location": "europe-west4",
    "cluster": "batch-1",
    "namespace": "batch",
}
# A Job as the API server returns it from the create call (trimmed).
CREATED_JOB: dict[str, Any] = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {
        "name": "gke-batch-job-train-20261201-1-7f3a9c2e",
        "namespace": "batch",
        "uid": "0d1c7a8e-52a1-4bb8-9b0e-8d2f3c1a6e55",
        "creationTimestamp": "2026-12-01T02:00:07Z",
        "labels": {"airflow-k8s-jobs.io/task-id": "train"},
    },
    "spec": {"template": {"spec": {"containers": [{"name": "main", "image": "task:1"}]}}},
}
CREATED_WORKFLOW: dict[str, Any] = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Workflow",
    "metadata": {
        "name": "daily-report-report-20261201-1-2b9d",
        "namespace": "batch",
        "uid": "4f6c1d2e-0b7a-4c55-8e21-9a3d5f7b1c08",
        "creationTimestamp": "2026-12-01T02:00:09Z",
    },
}
JOB_NAME = CREATED_JOB["metadata"]["name"]


def gke_settings(**extra: Any) -> ClusterSettings:
    return ClusterSettings.from_parts("gke_batch", "k8sjobs", {**GKE_EXTRAS, **extra})


def gke_data() -> dict[str, str]:
    return job_link_data(gke_settings(), "batch", CREATED_JOB)


# --- what the operators store ---------------------------------------------------------------------


def test_job_link_data_from_a_gke_connection() -> None:
    assert gke_data() == {
        "namespace": "batch",
        "name": JOB_NAME,
        "created": "2026-12-01T02:00:07Z",
        "project": "acme-data-prod",
        "location": "europe-west4",
        "cluster": "batch-1",
    }


@pytest.mark.parametrize(
    ("conn_type", "extras"),
    [
        ("k8sjobs", {"kubeconfig_path": "/etc/kube/config", "namespace": "batch"}),
        ("k8sjobs", {"in_cluster": True}),
        ("kubernetes", {"kube_config_path": "/etc/kube/config"}),
    ],
    ids=["kubeconfig", "in-cluster", "cncf"],
)
def test_no_gke_links_for_other_connections(conn_type: str, extras: dict[str, Any]) -> None:
    settings = ClusterSettings.from_parts("other", conn_type, extras)
    data = job_link_data(settings, "batch", CREATED_JOB)
    assert data == {"namespace": "batch", "name": JOB_NAME, "created": "2026-12-01T02:00:07Z"}
    assert gke_job_url(data) == ""
    assert gke_job_logs_url(data) == ""


def test_the_stored_data_holds_no_credentials() -> None:
    settings = gke_settings(
        impersonation_chain="batch-runner@acme-data-prod.iam.gserviceaccount.com"
    )
    assert set(job_link_data(settings, "batch", CREATED_JOB)) == {
        "namespace",
        "name",
        "created",
        "project",
        "location",
        "cluster",
    }
    data = workflow_link_data("https://admin:s3cret@argo.acme.example/", "batch", CREATED_WORKFLOW)
    assert "s3cret" not in json.dumps(data)
    assert data["argo_ui_url"] == "https://argo.acme.example"


# --- GKE console ----------------------------------------------------------------------------------


def test_gke_job_url() -> None:
    assert gke_job_url(gke_data()) == (
        "https://console.cloud.google.com/kubernetes/job/europe-west4/batch-1/batch/"
        f"{JOB_NAME}/details?project=acme-data-prod"
    )


def test_gke_job_url_encodes_its_parts() -> None:
    data = {**gke_data(), "cluster": "batch/1", "project": "a&b"}
    url = urlsplit(gke_job_url(data))
    assert url.path.split("/")[3:5] == ["europe-west4", "batch%2F1"]
    assert parse_qs(url.query) == {"project": ["a&b"]}


@pytest.mark.parametrize("missing", ["project", "location", "cluster", "namespace", "name"])
def test_no_gke_job_url_without_a_part(missing: str) -> None:
    data = {k: v for k, v in gke_data().items() if k != missing}
    assert gke_job_url(data) == ""
    assert gke_job_logs_url(data) == ""


# --- Cloud Logging --------------------------------------------------------------------------------


def test_gke_job_logs_query() -> None:
    assert gke_job_logs_query(gke_data()).splitlines() == [
        'resource.type="k8s_container"',
        'resource.labels.project_id="acme-data-prod"',
        'resource.labels.location="europe-west4"',
        'resource.labels.cluster_name="batch-1"',
        'resource.labels.namespace_name="batch"',
        f'labels."k8s-pod/job-name"="{JOB_NAME}"',
        'timestamp>="2026-12-01T02:00:07Z"',
    ]


def test_gke_job_logs_url_is_the_encoded_query() -> None:
    url = gke_job_logs_url(gke_data())
    assert url.startswith("https://console.cloud.google.com/logs/query;query=")
    parts = urlsplit(url)
    assert parse_qs(parts.query) == {"project": ["acme-data-prod"]}
    encoded = parts.path.removeprefix("/logs/query;query=")
    # Everything but unreserved characters is percent-encoded: no raw quote, space, newline,
    # '=', '/' or ';' that a browser or the console could split on.
    assert not set(encoded) & set('" \n=/;?&#')
    assert "%0A" in encoded and "%22" in encoded
    assert unquote(encoded) == gke_job_logs_query(gke_data())


def test_gke_job_logs_query_without_a_creation_time() -> None:
    data = {k: v for k, v in gke_data().items() if k != "created"}
    assert not any(line.startswith("timestamp") for line in gke_job_logs_query(data).splitlines())


def test_gke_job_logs_query_escapes_quotes() -> None:
    data = {**gke_data(), "namespace": 'odd"ns\\'}
    assert 'resource.labels.namespace_name="odd\\"ns\\\\"' in gke_job_logs_query(data)


# --- Argo UI --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "base"),
    [
        ("https://argo.acme.example", "https://argo.acme.example"),
        ("https://argo.acme.example/", "https://argo.acme.example"),
        ("  https://tools.acme.example/argo/  ", "https://tools.acme.example/argo"),
        ("http://localhost:2746/", "http://localhost:2746"),
        (
            "https://user:pass@argo.acme.example:8443/ui/?token=x#frag",
            "https://argo.acme.example:8443/ui",
        ),
        ("javascript:alert(1)", None),
        ("argo.acme.example", None),
        ("ftp://argo.acme.example", None),
        ("", None),
        (None, None),
    ],
)
def test_argo_ui_base(given: str | None, base: str | None) -> None:
    assert argo_ui_base(given) == base


def test_argo_workflow_url() -> None:
    data = workflow_link_data("https://argo.acme.example/", "batch", CREATED_WORKFLOW)
    assert argo_workflow_url(data) == (
        "https://argo.acme.example/workflows/batch/daily-report-report-20261201-1-2b9d"
    )


def test_no_argo_workflow_url_without_an_argo_ui() -> None:
    data = workflow_link_data(None, "batch", CREATED_WORKFLOW)
    assert data == {"namespace": "batch", "name": "daily-report-report-20261201-1-2b9d"}
    assert argo_workflow_url(data) == ""


# --- the link classes -----------------------------------------------------------------------------


class FakeXCom:
    def __init__(self, values: dict[tuple[Any, str], Any]) -> None:
        self.values = values
        self.calls: list[tuple[Any, str]] = []

    def get_value(self, *, ti_key: Any, key: str) -> Any:
        self.calls.append((ti_key, key))
        return self.values.get((ti_key, key))


def test_links_are_built_from_the_stored_xcom(monkeypatch: pytest.MonkeyPatch) -> None:
    workflow = workflow_link_data("https://argo.acme.example", "batch", CREATED_WORKFLOW)
    xcom = FakeXCom(
        {("ti-0", "k8s_job_link"): gke_data(), ("ti-0", "argo_workflow_link"): workflow}
    )
    monkeypatch.setattr(links, "XCom", xcom)
    assert GkeJobLink().get_link(None, ti_key="ti-0") == gke_job_url(gke_data())
    assert GkeJobLogsLink().get_link(None, ti_key="ti-0") == gke_job_logs_url(gke_data())
    assert ArgoWorkflowLink().get_link(None, ti_key="ti-0") == argo_workflow_url(workflow)
    # Another task instance (another map index, another try) has nothing stored: no link.
    for link in (GkeJobLink(), GkeJobLogsLink(), ArgoWorkflowLink()):
        assert link.get_link(None, ti_key="ti-1") == ""
    assert ("ti-1", "k8s_job_link") in xcom.calls


def test_a_malformed_xcom_gives_no_link(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(links, "XCom", FakeXCom({("ti", "k8s_job_link"): "not a dict"}))
    assert GkeJobLink().get_link(None, ti_key="ti") == ""


def test_each_link_has_its_own_xcom_key() -> None:
    keys = [link.xcom_key for link in (GkeJobLink(), GkeJobLogsLink(), ArgoWorkflowLink())]
    assert len(set(keys)) == 3
    assert not {"k8s_job_link", "argo_workflow_link", "job_name", "namespace"} & set(keys)


def test_the_operators_have_their_links() -> None:
    assert [link.name for link in KubeJobOperator.operator_extra_links] == [
        "Kubernetes Job (GKE console)",
        "Pod logs (Cloud Logging)",
    ]
    assert [link.name for link in ArgoWorkflowOperator.operator_extra_links] == ["Argo Workflow"]
    job = KubeJobOperator(task_id="t", image="app:1")
    assert {link.name for link in job.operator_extra_links} == {
        "Kubernetes Job (GKE console)",
        "Pod logs (Cloud Logging)",
    }


# --- registration ---------------------------------------------------------------------------------

LINK_CLASSES = {
    "airflow_k8s_jobs.operators.links.GkeJobLink",
    "airflow_k8s_jobs.operators.links.GkeJobLogsLink",
    "airflow_k8s_jobs.operators.links.ArgoWorkflowLink",
}


def test_provider_info_lists_every_link_class() -> None:
    listed = get_provider_info()["extra-links"]
    assert set(listed) == LINK_CLASSES
    used = {
        f"{type(link).__module__}.{type(link).__qualname__}"
        for op in (KubeJobOperator, ArgoWorkflowOperator)
        for link in op.operator_extra_links
    }
    assert used == LINK_CLASSES
    for path in listed:
        module, _, name = path.rpartition(".")
        assert getattr(importlib.import_module(module), name).__name__ == name


def test_providers_manager_registers_the_links() -> None:
    from airflow.providers_manager import ProvidersManager

    assert set(ProvidersManager().extra_links_class_names) >= LINK_CLASSES


@pytest.mark.slow
def test_airflow_cli_lists_the_links(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(AIRFLOW_HOME=str(tmp_path), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "links", "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    json_lines = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert json_lines, result.stdout
    rows = json.loads(json_lines[-1])
    ours = {
        row["extra_link_class_name"]
        for row in rows
        if row["extra_link_class_name"].startswith("airflow_k8s_jobs.")
    }
    assert ours == LINK_CLASSES, rows
