"""The operators' extra links on a task instance run by real Airflow (``dag.test()``) against the
simulated cluster, read back as the UI reads them.

The UI asks the DAG as serialized, not the DAG object: Airflow 3's API server reads each link's
URL from the XCom named by the link's ``xcom_key``; Airflow 2's webserver re-creates the link
classes registered by providers and calls their ``get_link``. Both are done here.

For the GKE links the task uses a GKE connection (project/location/cluster); its control plane
endpoint and Google token are pointed at the simulated cluster.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from google.oauth2.credentials import Credentials

from airflow_k8s_jobs._compat import AIRFLOW_V_3_0_PLUS
from airflow_k8s_jobs.clusters import gke
from airflow_k8s_jobs.manifests.names import DAG_ID, MAP_INDEX, TASK_ID
from airflow_k8s_jobs.triggers.jobs import KubeJobTrigger
from simulated_k8s_cluster import SimulatedCluster

from .conftest import load_dag

pytestmark = pytest.mark.e2e

NAMESPACE = "batch"
JOB_LINK = "Kubernetes Job (GKE console)"
LOGS_LINK = "Pod logs (Cloud Logging)"
ARGO_LINK = "Argo Workflow"
GKE = {"project": "acme-data-prod", "location": "europe-west4", "cluster": "batch-1"}

# Airflow 3's dag.test() runs a DAG of the DAGs folder: the test DAGs are written there.
DAG_FILE = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / "links" / "links_dags.py"
DAG_SOURCE = '''
"""Test-only DAGs: the operators' extra links (tests/e2e/test_links.py)."""

from datetime import datetime

from airflow import DAG

from airflow_k8s_jobs import ArgoWorkflowOperator, KubeJobOperator

WORKFLOW = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Workflow",
    "metadata": {"generateName": "links-"},
    "spec": {
        "entrypoint": "main",
        "templates": [{"name": "main", "container": {"image": "links/argo:1"}}],
    },
}


def links_dag(dag_id, conn_id):
    return DAG(
        dag_id,
        schedule=None,
        start_date=datetime(2026, 11, 1),
        catchup=False,
        tags=["airflow-k8s-jobs", "test"],
        default_args={"cluster_conn_id": conn_id},
    )


with links_dag("links_gke", "links_gke") as links_gke:
    KubeJobOperator(task_id="job", image="links/app:1")
    KubeJobOperator.partial(task_id="mapped", image="links/app:1").expand(
        arguments=[["--part", "0"], ["--part", "1"]]
    )
    ArgoWorkflowOperator(
        task_id="argo", workflow=WORKFLOW, argo_ui_url="https://argo.acme.example/ui/"
    )

with links_dag("links_kubeconfig", "gke_batch") as links_kubeconfig:
    KubeJobOperator(task_id="job", image="links/app:1")
    ArgoWorkflowOperator(task_id="argo", workflow=WORKFLOW)
'''


def dag_file() -> Path:
    if not DAG_FILE.exists():
        DAG_FILE.parent.mkdir(parents=True, exist_ok=True)
        DAG_FILE.write_text(DAG_SOURCE)
    return DAG_FILE


@pytest.fixture
def gke_connection(e2e_cluster: SimulatedCluster, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Connection ``links_gke``: a GKE cluster whose endpoint and token are the simulated
    cluster's. Returns the GKE clusters whose endpoint was asked for."""
    used: set[str] = set()
    conn = {"conn_type": "k8sjobs", "extra": {**GKE, "namespace": NAMESPACE}}
    monkeypatch.setenv("AIRFLOW_CONN_LINKS_GKE", json.dumps(conn))

    def issue(request: Any, scopes: Any) -> tuple[str, dt.datetime]:
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        return e2e_cluster.token, now + dt.timedelta(hours=1)

    def token_source_for(
        chain: tuple[str, ...] = (), gcp_conn_id: str | None = None
    ) -> gke.GoogleTokenSource:
        credentials = Credentials(token=None, refresh_handler=issue)
        return gke.GoogleTokenSource(credentials, request_factory=lambda: None)

    def cluster_endpoint(settings: Any, credentials: Any) -> gke.GkeEndpoint:
        used.add(settings.gke_cluster_name)
        return gke.GkeEndpoint(e2e_cluster.url, None)

    monkeypatch.setattr(gke, "token_source_for", token_source_for)
    monkeypatch.setattr(gke, "cluster_endpoint", cluster_endpoint)
    return used


def run(dag_id: str) -> Any:
    dag = load_dag(str(dag_file()), dag_id)
    dag_run = dag.test()
    states = {(ti.task_id, ti.map_index): str(ti.state) for ti in dag_run.get_task_instances()}
    assert set(states.values()) == {"success"}, states
    return dag, dag_run


def ui_link(dag: Any, ti: Any, name: str) -> str | None:
    """The link's URL as the UI gets it: from the serialized DAG's task."""
    if AIRFLOW_V_3_0_PLUS:
        from airflow.models.serialized_dag import SerializedDagModel

        serialized = SerializedDagModel.get_dag(dag.dag_id)
    else:
        from airflow.serialization.serialized_objects import SerializedDAG

        serialized = SerializedDAG.from_dict(SerializedDAG.to_dict(dag))
    assert serialized is not None
    task = serialized.get_task(ti.task_id)
    assert name in task.extra_links
    return task.get_extra_links(ti, name) or None  # the UI shows an empty URL as no link


def created(cluster: SimulatedCluster, resource: str, dag_id: str, ti: Any) -> dict[str, Any]:
    """The one object the task instance created on the cluster."""
    labels = {DAG_ID: dag_id, TASK_ID: ti.task_id}
    if ti.map_index >= 0:
        labels[MAP_INDEX] = str(ti.map_index)
    (found,) = cluster.list(resource, NAMESPACE, labels)
    return found


def links_while_deferred(monkeypatch: pytest.MonkeyPatch, dag_id: str) -> list[tuple[Any, ...]]:
    """Record, each time a Job trigger starts (the task deferred), the link to its Job."""
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    seen: list[tuple[Any, ...]] = []
    original = KubeJobTrigger.run

    async def run(self: KubeJobTrigger) -> AsyncIterator[Any]:
        try:
            dag = load_dag(str(dag_file()), dag_id)
            jobs = [
                t.task_id
                for t in dag.tasks
                if any(link.name == JOB_LINK for link in t.operator_extra_links)
            ]
            with create_session() as session:
                query = session.query(TaskInstance).filter(
                    TaskInstance.dag_id == dag_id, TaskInstance.task_id.in_(jobs)
                )
                for ti in query:
                    # The task instance waiting for this trigger: its link names the Job.
                    link = ui_link(dag, ti, JOB_LINK)
                    if link and f"/{self.target.name}/details" in link:
                        seen.append((ti.task_id, ti.map_index, link))
        except Exception as exc:  # reported by the test, not by a failing task
            seen.append(("error", -1, repr(exc)))
        async for event in original(self):
            yield event

    monkeypatch.setattr(KubeJobTrigger, "run", run)
    return seen


def test_gke_connection_links_the_job_and_its_logs(
    e2e_cluster: SimulatedCluster, gke_connection: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    deferred = links_while_deferred(monkeypatch, "links_gke")
    dag, dag_run = run("links_gke")
    assert gke_connection == {"projects/acme-data-prod/locations/europe-west4/clusters/batch-1"}
    tis = [ti for ti in dag_run.get_task_instances() if ti.task_id in ("job", "mapped")]
    assert sorted((ti.task_id, ti.map_index) for ti in tis) == [
        ("job", -1),
        ("mapped", 0),
        ("mapped", 1),
    ]
    names = set()
    for ti in tis:
        job = created(e2e_cluster, "jobs", "links_gke", ti)["metadata"]
        names.add(job["name"])
        assert ui_link(dag, ti, JOB_LINK) == (
            "https://console.cloud.google.com/kubernetes/job/europe-west4/batch-1/batch/"
            f"{job['name']}/details?project=acme-data-prod"
        )
        query = "%0A".join(
            [
                "resource.type%3D%22k8s_container%22",
                "resource.labels.project_id%3D%22acme-data-prod%22",
                "resource.labels.location%3D%22europe-west4%22",
                "resource.labels.cluster_name%3D%22batch-1%22",
                "resource.labels.namespace_name%3D%22batch%22",
                f"labels.%22k8s-pod%2Fjob-name%22%3D%22{job['name']}%22",
                "timestamp%3E%3D%22" + job["creationTimestamp"].replace(":", "%3A") + "%22",
            ]
        )
        assert ui_link(dag, ti, LOGS_LINK) == (
            f"https://console.cloud.google.com/logs/query;query={query}?project=acme-data-prod"
        )
        # The pods the logs link selects are the Job's own.
        pods = e2e_cluster.list("pods", NAMESPACE, {"job-name": job["name"]})
        assert pods and all(p["metadata"]["labels"]["job-name"] == job["name"] for p in pods)
    assert len(names) == 3  # each map index links to its own Job
    # The links were there while the tasks were deferred.
    assert {(task_id, map_index) for task_id, map_index, _ in deferred} == {
        ("job", -1),
        ("mapped", 0),
        ("mapped", 1),
    }
    for task_id, map_index, link in deferred:
        ti = next(t for t in tis if (t.task_id, t.map_index) == (task_id, map_index))
        assert link == ui_link(dag, ti, JOB_LINK)

    (argo,) = [ti for ti in dag_run.get_task_instances() if ti.task_id == "argo"]
    workflow = created(e2e_cluster, "workflows", "links_gke", argo)["metadata"]
    assert ui_link(dag, argo, ARGO_LINK) == (
        f"https://argo.acme.example/ui/workflows/batch/{workflow['name']}"
    )


def test_no_gke_or_argo_link_without_a_gke_connection_or_argo_ui(
    e2e_cluster: SimulatedCluster,
) -> None:
    dag, dag_run = run("links_kubeconfig")
    tis = {ti.task_id: ti for ti in dag_run.get_task_instances()}
    # The Job ran and its names are in XCom, but there is no console to link to.
    assert tis["job"].xcom_pull(task_ids="job", key="job_name")
    assert ui_link(dag, tis["job"], JOB_LINK) is None
    assert ui_link(dag, tis["job"], LOGS_LINK) is None
    assert ui_link(dag, tis["argo"], ARGO_LINK) is None
