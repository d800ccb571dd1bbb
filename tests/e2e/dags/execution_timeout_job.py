"""A test-only DAG: a Job that outlives the task's ``execution_timeout`` while deferred."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG

from airflow_k8s_jobs import KubeJobOperator

with DAG("execution_timeout_job", schedule=None, start_date=datetime(2026, 11, 1)) as dag:
    KubeJobOperator(
        task_id="too_slow",
        cluster_conn_id="gke_batch",
        namespace="batch",
        image="task-python:1.0",
        cmds=["python"],
        arguments=["train.py"],
        execution_timeout=timedelta(seconds=3),
    )
