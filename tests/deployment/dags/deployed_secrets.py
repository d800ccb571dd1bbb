"""Runs whose connection holds a bearer token inline (tests/deployment/test_example_dags_deployed.py
searches everything the deployment keeps for it): a Job and an Argo Workflow that succeed and a
Job that fails, each deferred to the triggerer while its container runs."""

from __future__ import annotations

from datetime import datetime

from airflow import DAG

from airflow_k8s_jobs import ArgoWorkflowOperator, KubeJobOperator

CONN_ID = "gke_batch_inline"

with DAG(
    dag_id="deployed_secrets",
    schedule="@once",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["airflow-k8s-jobs", "test"],
    default_args={"cluster_conn_id": CONN_ID, "namespace": "batch", "retries": 0},
) as deployed_secrets:
    KubeJobOperator(
        task_id="job_ok",
        image="task-python:1.0",
        cmds=["python"],
        arguments=["long-task.py", "secrets_ok", "{{ ds }}"],
    )
    KubeJobOperator(
        task_id="job_fails",
        image="task-python:1.0",
        cmds=["python"],
        arguments=["long-task.py", "secrets_fails"],
        backoff_limit=0,
    )
    ArgoWorkflowOperator(
        task_id="argo_ok",
        workflow={
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "metadata": {"generateName": "deployed-secrets-"},
            "spec": {
                "entrypoint": "main",
                "arguments": {"parameters": [{"name": "day", "value": "{{ ds }}"}]},
                "templates": [
                    {
                        "name": "main",
                        "container": {
                            "image": "task-python:1.0",
                            "command": ["python"],
                            "args": ["long-task.py", "secrets_ok", "{{workflow.parameters.day}}"],
                        },
                    }
                ],
            },
        },
    )
