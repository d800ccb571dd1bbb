"""Test-only DAGs: runs whose connection holds credentials (tests/e2e/test_secrets_never_leak.py).

``secrets_<conn>`` runs a Job and an Argo Workflow that succeed and a Job and a Workflow that
fail, through the connection ``<conn>``; nothing a run leaves behind may hold its token or key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow import DAG

from airflow_k8s_jobs import ArgoWorkflowOperator, KubeJobOperator

CONNECTIONS = ("secrets_inline_token", "secrets_kubeconfig_file", "secrets_unverified")
FAILURES: dict[tuple[str, str], list[str]] = {}
"""(dag id, task id) → the message of each failed try."""


def record_failure(context: Any) -> None:
    ti = context["ti"]
    FAILURES.setdefault((ti.dag_id, ti.task_id), []).append(str(context.get("exception")))


def _workflow(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "secrets-"},
        "spec": {
            "entrypoint": "main",
            "arguments": {"parameters": [{"name": "day", "value": "{{ ds }}"}]},
            "templates": [
                {
                    "name": "main",
                    "container": {"image": image, "args": ["{{workflow.parameters.day}}"]},
                }
            ],
        },
    }


for _conn_id in CONNECTIONS:
    with DAG(
        f"secrets_{_conn_id}",
        schedule=None,
        start_date=datetime(2026, 11, 1),
        catchup=False,
        tags=["airflow-k8s-jobs", "test"],
        default_args={"cluster_conn_id": _conn_id, "on_failure_callback": record_failure},
    ) as _dag:
        KubeJobOperator(task_id="job_ok", image="secrets/ok:1", arguments=["{{ ds }}"])
        KubeJobOperator(task_id="job_fails", image="secrets/exit-1:1", backoff_limit=0)
        ArgoWorkflowOperator(task_id="argo_ok", workflow=_workflow("secrets/ok:1"))
        ArgoWorkflowOperator(task_id="argo_fails", workflow=_workflow("secrets/exit-1:1"))
    globals()[_dag.dag_id] = _dag
