"""A test-only DAG: KubeJobOperator with ``deferrable=False`` (waits in the worker)."""

from __future__ import annotations

from datetime import datetime

from airflow import DAG

from airflow_k8s_jobs import KubeJobOperator

with DAG("sync_mode_job", schedule=None, start_date=datetime(2026, 11, 1)) as dag:
    KubeJobOperator(
        task_id="preprocess",
        cluster_conn_id="gke_batch",
        namespace="batch",
        image="task-python:1.0",
        cmds=["python"],
        arguments=["pre-task.py"],
        deferrable=False,
    )
