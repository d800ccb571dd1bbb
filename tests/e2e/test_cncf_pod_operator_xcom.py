"""The cncf ``KubernetesPodOperator`` with ``do_xcom_push=True``, run by real Airflow.

The operator adds its xcom sidecar (``alpine``, ``trap "exit 0" INT; while true; do sleep 1;
done;``), waits for the ``base`` container to finish, reads ``/airflow/xcom/return.json``
through ``pods/exec`` in the sidecar (the file the base container wrote into the shared
``emptyDir``), and stops the sidecar with ``kill -2`` sent to an exec'd shell.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simulated_k8s_cluster import SimulatedCluster

from .conftest import load_dag

pytestmark = pytest.mark.e2e

DAG_ID = "cncf_pod_operator_xcom"
IMAGE = "registry.example.com/etl:2.0"
RESULT = {"rows": 42, "tables": ["orders", "customers"]}

DAG_SOURCE = f'''
from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

with DAG("{DAG_ID}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    KubernetesPodOperator(
        task_id="extract",
        name="extract",
        namespace="batch",
        image="{IMAGE}",
        cmds=["python", "extract.py"],
        do_xcom_push=True,
        kubernetes_conn_id="cncf_sim",
        get_logs=True,
        on_finish_action="keep_pod",
        startup_timeout_seconds=60,
    )
'''


@pytest.fixture
def cncf_cluster(
    airflow_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SimulatedCluster]:
    """A simulated cluster behind the cncf connection ``cncf_sim``."""
    config: dict[str, Any] = {
        "timeScale": 0.01,
        "namespaces": ["batch"],
        "behaviours": [
            {
                "match": {"image": IMAGE, "args": "extract.py"},
                "seconds": 20,
                "stdout": ["extracting", "done"],
                "files": {"/airflow/xcom/return.json": json.dumps(RESULT)},
            }
        ],
    }
    with SimulatedCluster(config) as cluster:
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig.yaml")
        conn = {
            "conn_type": "kubernetes",
            "extra": {"kube_config_path": str(kubeconfig), "namespace": "batch"},
        }
        monkeypatch.setenv("AIRFLOW_CONN_CNCF_SIM", json.dumps(conn))
        yield cluster


def _dag_file() -> Path:
    """The DAG, written into the session's DAGs folder (Airflow 3 runs it from there)."""
    folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / "cncf_xcom"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{DAG_ID}.py"
    path.write_text(DAG_SOURCE)
    return path


def test_do_xcom_push_reads_the_file_through_exec_and_stops_the_sidecar(
    cncf_cluster: SimulatedCluster,
) -> None:
    dag = load_dag(str(_dag_file()), DAG_ID)
    dag_run = dag.test()

    (ti,) = dag_run.get_task_instances()
    assert str(ti.state) == "success"
    assert ti.xcom_pull(task_ids="extract") == RESULT

    (pod,) = cncf_cluster.list("pods", "batch")
    statuses = {s["name"]: s for s in pod["status"]["containerStatuses"]}
    assert set(statuses) == {"base", "airflow-xcom-sidecar"}
    # The sidecar did not stop by itself: the operator's SIGINT ended it, through its trap.
    sidecar = statuses["airflow-xcom-sidecar"]["state"]["terminated"]
    assert (sidecar["exitCode"], sidecar["reason"]) == (0, "Completed")
    assert pod["status"]["phase"] == "Succeeded"
    assert cncf_cluster.requests(verb="get", resource="pods/exec") >= 2
