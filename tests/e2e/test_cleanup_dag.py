"""The daily cleanup example DAG run by real Airflow (``dag.test()``) against the simulated
cluster, on both Airflow versions."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_k8s_jobs.manifests.names import MANAGED_BY
from simulated_k8s_cluster import SimulatedCluster

from .conftest import load_dag

pytestmark = pytest.mark.e2e

NS = "batch"
DAY = 86400
OLD, YOUNG, OTHERS = 20, 3, 2
BEHAVIOUR = "sim.airflow-k8s-jobs/behaviour"


def job(name: str, labels: dict[str, str], behaviour: dict[str, Any] | None = None) -> Any:
    template_meta = {"annotations": {BEHAVIOUR: json.dumps(behaviour)}} if behaviour else {}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {
            "template": {
                "metadata": template_meta,
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "task-python:1.0"}],
                },
            }
        },
    }


def finished_count(cluster: SimulatedCluster) -> int:
    return sum(
        any(
            c["type"] in ("Complete", "Failed") and c["status"] == "True"
            for c in (j.get("status") or {}).get("conditions") or []
        )
        for j in cluster.list("jobs", NS)
    )


@pytest.fixture
def leftovers(
    airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SimulatedCluster]:
    """Behind ``gke_batch``: 20 Jobs of ours that finished 8 days ago, 3 that just finished,
    one running, and 2 finished long ago that someone else created."""
    config = {"timeScale": 0, "namespaces": [NS], "nodePools": [{"name": "default", "nodes": 1}]}
    with SimulatedCluster(config) as cluster:
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig.yaml")
        conn = {
            "conn_type": "k8sjobs",
            "extra": {"kubeconfig_path": str(kubeconfig), "namespace": NS},
        }
        monkeypatch.setenv("AIRFLOW_CONN_GKE_BATCH", json.dumps(conn))
        ours = dict(MANAGED_BY)
        for i in range(OLD):
            cluster.create(job(f"old-{i:02d}", ours))
        for i in range(OTHERS):
            cluster.create(job(f"kubectl-{i}", {"app": "nightly"}))
        cluster.advance(5)
        cluster.wait_for(lambda: finished_count(cluster) == OLD + OTHERS, message="old Jobs")
        cluster.advance(8 * DAY)
        for i in range(YOUNG):
            cluster.create(job(f"young-{i}", ours))
        cluster.create(job("running", ours, {"seconds": 100 * DAY}))
        cluster.advance(5)
        cluster.wait_for(
            lambda: finished_count(cluster) == OLD + OTHERS + YOUNG, message="young Jobs"
        )
        cluster.reset_counters()
        yield cluster


def test_cleanup_jobs_dag(leftovers: SimulatedCluster) -> None:
    cluster = leftovers
    dag = load_dag("cleanup_jobs.py", "cleanup_jobs")
    started = time.monotonic()
    dag_run = dag.test()
    elapsed = time.monotonic() - started

    (ti,) = dag_run.get_task_instances()
    assert str(ti.state) == "success"
    remaining = {j["metadata"]["name"] for j in cluster.list("jobs", NS)}
    assert remaining == {"young-0", "young-1", "young-2", "running", "kubectl-0", "kubectl-1"}
    cluster.wait_for(
        lambda: all(not p["metadata"]["name"].startswith("old-") for p in cluster.list("pods", NS)),
        message="the old Jobs' pods to be garbage collected",
    )

    summary = ti.xcom_pull(task_ids="delete_finished_jobs")
    counts = summary["namespaces"][NS]
    assert summary["deleted"] == counts["deleted"] == OLD
    assert counts["kept_running"] == 1 and counts["kept_too_young"] == YOUNG
    assert counts["names"] == [f"old-{i:02d}" for i in range(OLD)]
    # No clock given: the cluster's Date header (with the manual clock, the advanced time).
    assert counts["clock"] == "cluster's Date header"

    requests = cluster.requests(verb="list", resource="jobs") + cluster.requests(
        verb="delete", resource="jobs"
    )
    assert requests == summary["requests"] == 1 + OLD
    # 5 requests per second: 21 requests cannot take less than 20 / 5 seconds.
    assert elapsed >= (requests - 1) / 5.0 - 0.05
