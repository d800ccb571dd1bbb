"""End-to-end: real Airflow runs the example DAGs against the simulated cluster."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simulated_k8s_cluster import SimulatedCluster

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"


E2E_CLUSTER: dict[str, Any] = {
    "timeScale": 0.01,
    "namespaces": ["batch"],
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
            "seconds": 5,
            "stdout": "preprocessing\n[1, 2, 3]",
            "terminationMessage": "[1, 2, 3]",
        },
        {
            "match": {"image": "task-python:1.0", "args": "train.py"},
            "seconds": 30,
            "stdout": "epoch 1/1\nmodel saved",
            "terminationMessage": '{"auc": 0.91}',
        },
    ],
}


@pytest.fixture
def e2e_cluster(
    airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SimulatedCluster]:
    """The simulated cluster behind the connection the example DAGs use (``gke_batch``)."""
    with SimulatedCluster(E2E_CLUSTER) as cluster:
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig.yaml")
        conn = {
            "conn_type": "k8sjobs",
            "extra": {"kubeconfig_path": str(kubeconfig), "namespace": "batch"},
        }
        monkeypatch.setenv("AIRFLOW_CONN_GKE_BATCH", json.dumps(conn))
        yield cluster


def load_dag(file_name: str, dag_id: str) -> Any:
    """Import an example DAG file as Airflow's DAG processor would, and return the DAG."""
    path = EXAMPLE_DAGS / file_name
    spec = importlib.util.spec_from_file_location(f"example_dag_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dags = [v for v in vars(module).values() if getattr(v, "dag_id", None) == dag_id]
    assert dags, f"{file_name} defines no DAG {dag_id}"
    return dags[0]
