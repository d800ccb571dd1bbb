"""The Job example DAGs run by real Airflow (``dag.test()``, deferred triggers run inline)."""

from __future__ import annotations

from typing import Any

import pytest

from simulated_k8s_cluster import SimulatedCluster

from .conftest import load_dag

pytestmark = pytest.mark.e2e


def task_states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def test_gke_batch_job_dag(e2e_cluster: SimulatedCluster) -> None:
    dag = load_dag("gke_batch_job.py", "gke_batch_job")
    dag_run = dag.test()
    assert task_states(dag_run) == {"preprocess": "success", "train": "success"}
    jobs = e2e_cluster.list("jobs", "batch")
    assert len(jobs) == 2
    train = next(
        j for j in jobs if j["metadata"]["labels"]["airflow-k8s-jobs.io/task-id"] == "train"
    )
    # The GPU pod waited for a scale-up of the GPU pool before it ran.
    pods = e2e_cluster.list(
        "pods", "batch", {"batch.kubernetes.io/job-name": train["metadata"]["name"]}
    )
    assert e2e_cluster.events("batch", pods[0]["metadata"]["name"], "TriggeredScaleUp")
    ti = next(t for t in dag_run.get_task_instances() if t.task_id == "preprocess")
    assert ti.xcom_pull(task_ids="preprocess") == ["[1, 2, 3]"]
