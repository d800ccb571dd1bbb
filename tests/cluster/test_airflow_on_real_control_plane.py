"""Real Airflow runs KubeJobOperator DAGs against the upstream control plane.

``airflow dags test`` runs tests/cluster/dags/real_cluster_jobs.py once, as a subprocess with a
scratch ``AIRFLOW_HOME``, against ``scripts/real-cluster`` with a default pool and a GPU pool
that scales from zero, as the service account bound to docs/rbac/airflow-k8s-jobs.yaml. The
tests then read the outcome from Airflow's database (task states, XCom), from the command's
output (the task logs) and from the cluster.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from .airflow_runs import AirflowHome, DagRunResult
from .conftest import (
    GPU_TAINT,
    START_TIMEOUT,
    RunningCluster,
    least_privileged_kubeconfig,
    run_cluster_with_nodes,
)

# Not skipped without KUBECONFIG (see conftest.py): the cluster is started here.
STARTS_OWN_CLUSTER = True

pytestmark = [pytest.mark.slow, pytest.mark.timeout(START_TIMEOUT + 600)]

DAGS = Path(__file__).parent / "dags"
DAG_ID = "real_cluster_jobs"
LOGICAL_DATE = "2026-11-02"
CONN_ID = "real_cluster"
NAMESPACE = "jobs"
DAG_ID_LABEL = "airflow-k8s-jobs.io/dag-id"
TASK_ID_LABEL = "airflow-k8s-jobs.io/task-id"
MANAGED_BY = "app.kubernetes.io/managed-by"
NODE_POOL_LABEL = "cloud.google.com/gke-nodepool"
DAG_RUN_TIMEOUT = 300

NODES_CONFIG = {
    "namespaces": [NAMESPACE],
    "timeScale": 1,
    "autoscalerScanSeconds": 1,
    "nodePools": [
        {"name": "default", "nodes": 2, "capacity": {"cpu": "8", "memory": "32Gi"}},
        {
            "name": "gpu",
            "nodes": 0,
            "maxNodes": 1,
            "scaleUpSeconds": 5,
            "capacity": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"},
            "labels": {
                NODE_POOL_LABEL: "gpu",
                "cloud.google.com/gke-accelerator": "nvidia-tesla-t4",
            },
            # node_pool="gpu" tolerates the first, a GPU request the second.
            "taints": [
                {"key": NODE_POOL_LABEL, "value": "gpu", "effect": "NoSchedule"},
                GPU_TAINT,
            ],
        },
    ],
}


@dataclass
class DagRun:
    cluster: RunningCluster
    result: DagRunResult

    @property
    def output(self) -> str:
        return self.result.output

    def states(self) -> dict[str, str]:
        return self.result.states()

    def xcom(self, task_id: str) -> Any:
        return self.result.xcom(task_id)

    def jobs(self, task_id: str) -> list[client.V1Job]:
        selector = f"{DAG_ID_LABEL}={DAG_ID},{TASK_ID_LABEL}={task_id}"
        batch = client.BatchV1Api(self.cluster.api)
        return list(batch.list_namespaced_job(NAMESPACE, label_selector=selector).items)

    def pods(self, job: client.V1Job) -> list[client.V1Pod]:
        core = client.CoreV1Api(self.cluster.api)
        selector = f"batch.kubernetes.io/job-name={job.metadata.name}"
        return list(core.list_namespaced_pod(NAMESPACE, label_selector=selector).items)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    with run_cluster_with_nodes(tmp_path_factory, NODES_CONFIG) as running:
        yield running


@pytest.fixture(scope="module")
def dag_run(cluster: RunningCluster, tmp_path_factory: pytest.TempPathFactory) -> DagRun:
    base = tmp_path_factory.mktemp("airflow")
    dags_folder = base / "dags"
    shutil.copytree(DAGS, dags_folder)
    # Airflow runs as the service account of docs/rbac/, not as the cluster's admin.
    kubeconfig = least_privileged_kubeconfig(cluster, NAMESPACE, base / "kubeconfig.yaml")
    connection = {
        "conn_type": "k8sjobs",
        "extra": {"kubeconfig_path": str(kubeconfig), "namespace": NAMESPACE},
    }
    home = AirflowHome(base / "home", dags_folder, CONN_ID, connection)
    return DagRun(cluster, home.dags_test(DAG_ID, LOGICAL_DATE, timeout=DAG_RUN_TIMEOUT))


def conditions(job: client.V1Job) -> dict[str, str]:
    return {c.type: c.reason for c in job.status.conditions or [] if c.status == "True"}


def test_every_task_ends_as_expected(dag_run: DagRun) -> None:
    assert dag_run.states() == {
        "hello": "success",
        "shards": "success",
        "failing": "failed",
        "gpu": "success",
    }, dag_run.output[-6000:]


def test_a_job_with_a_termination_message(dag_run: DagRun) -> None:
    assert dag_run.states()["hello"] == "success", dag_run.output[-6000:]
    # One pod succeeded: a list of its one termination message.
    assert dag_run.xcom("hello") == ["result-42"]
    (job,) = dag_run.jobs("hello")
    assert job.metadata.labels[MANAGED_BY] == "airflow-k8s-jobs"
    assert "Complete" in conditions(job)
    (pod,) = dag_run.pods(job)
    assert pod.status.phase == "Succeeded"
    assert pod.spec.node_name.startswith("gke-")
    for line in (f"hello from {pod.metadata.name}", "working", "all done"):
        assert line in dag_run.output


def test_an_indexed_job_returns_its_messages_by_index(dag_run: DagRun) -> None:
    assert dag_run.states()["shards"] == "success", dag_run.output[-6000:]
    assert dag_run.xcom("shards") == [f"shard-{i}" for i in range(4)]
    (job,) = dag_run.jobs("shards")
    assert (job.spec.completion_mode, job.spec.completions, job.spec.parallelism) == (
        "Indexed",
        4,
        2,
    )
    assert "Complete" in conditions(job)
    assert job.status.succeeded == 4
    indexes = sorted(
        p.metadata.annotations["batch.kubernetes.io/job-completion-index"]
        for p in dag_run.pods(job)
    )
    assert indexes == ["0", "1", "2", "3"]


def test_a_failing_job_fails_the_task_with_its_last_log_lines(dag_run: DagRun) -> None:
    assert dag_run.states()["failing"] == "failed", dag_run.output[-6000:]
    (job,) = dag_run.jobs("failing")
    assert conditions(job).get("Failed") == "BackoffLimitExceeded"
    assert job.status.failed == 2
    pods = dag_run.pods(job)
    assert len(pods) == 2
    for pod in pods:
        assert pod.status.container_statuses[0].state.terminated.exit_code == 3
    error = re.search(
        r"JobFailedError: Job jobs/\S+ .*failed: BackoffLimitExceeded: .*\n"
        r"Failed pods:\n"
        r"- pod \S+: container main exited with code 3 \(Error\)\n"
        r"  last \d+ log lines:\n"
        r"(    \| .*\n)+",
        dag_run.output,
    )
    assert error, dag_run.output[-6000:]
    assert "    | failing line 5\n" in error.group(0)


def test_a_gpu_job_waits_for_the_scale_up(dag_run: DagRun) -> None:
    assert dag_run.states()["gpu"] == "success", dag_run.output[-6000:]
    assert dag_run.xcom("gpu") == ["gpu-ok"]
    (job,) = dag_run.jobs("gpu")
    assert "Complete" in conditions(job)
    (pod,) = dag_run.pods(job)
    core = client.CoreV1Api(dag_run.cluster.api)
    node = core.read_node(pod.spec.node_name)
    assert node.metadata.labels[NODE_POOL_LABEL] == "gpu"
    events = core.list_namespaced_event(
        NAMESPACE, field_selector=f"involvedObject.name={pod.metadata.name}"
    ).items
    reasons = {e.reason for e in events}
    assert {"FailedScheduling", "TriggeredScaleUp"} <= reasons
