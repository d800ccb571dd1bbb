"""Real Airflow deployments (scheduler, triggerer, LocalExecutor, PostgreSQL) for the tests in
this folder; see deployment.py."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simulated_k8s_cluster import SimulatedCluster

from .deployment import PostgresServer

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"

# The example DAGs' cluster, its durations shortened: a wall second per 100 simulated ones. The
# containers still run for 15 wall seconds: a trigger firing within moments of its deferral races
# the scheduler's handling of the deferring worker's exit (Airflow then fails the resumed task as
# "state changed externally"); on a real cluster Jobs run for minutes.
DEPLOYMENT_CLUSTER: dict[str, Any] = {
    "timeScale": 0.01,
    "namespaces": ["batch", "argo"],
    "nodePools": [
        {
            "name": "default",
            "nodes": 2,
            "capacity": {"cpu": "8", "memory": "32Gi"},
            "labels": {"cloud.google.com/gke-nodepool": "default"},
        },
        {
            "name": "gpu",
            "nodes": 0,
            "maxNodes": 2,
            "scaleUpSeconds": 120,
            "capacity": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"},
            "labels": {"cloud.google.com/gke-nodepool": "gpu"},
            "taints": [
                {"key": "cloud.google.com/gke-nodepool", "value": "gpu", "effect": "NoSchedule"}
            ],
        },
    ],
    "argo": {},
    "behaviours": [
        {
            "match": {"image": "task-python:1.0", "args": "pre-task.py"},
            "seconds": 1500,
            "stdout": "preprocessing\n[1, 2, 3]",
            "terminationMessage": "[1, 2, 3]",
        },
        {
            "match": {"image": "task-python:1.0", "args": "train.py"},
            "seconds": 1500,
            "stdout": "epoch 1/1\nmodel saved",
            "terminationMessage": '{"auc": 0.91}',
        },
    ],
}


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    # Not under pytest's tmp folder: as root the server runs as the "postgres" user, who must
    # reach its data directory.
    parent = Path(tempfile.mkdtemp(prefix="airflow-k8s-jobs-postgres-"))
    server = PostgresServer(parent / "data")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def cluster_connection(tmp_path: Path) -> Iterator[tuple[SimulatedCluster, dict[str, Any]]]:
    """The simulated cluster and the ``gke_batch`` connection to it."""
    with SimulatedCluster(DEPLOYMENT_CLUSTER) as cluster:
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig.yaml")
        conn = {
            "conn_type": "k8sjobs",
            "extra": {"kubeconfig_path": str(kubeconfig), "namespace": "batch"},
        }
        yield cluster, conn


def connection_json(conn: dict[str, Any]) -> str:
    return json.dumps(conn)
