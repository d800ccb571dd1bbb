"""Seed case: a Cloud Composer DAG runs a batch Job on a *separate* GKE cluster.

Replaces ``BashOperator`` + ``kubectl create job`` + a wait loop: the Job is created with a
deterministic name, the task defers while it runs (no worker slot held), waits through node
scale-ups up to ``capacity_timeout``, and ends with every pod's log in the task log.

Connection ``gke_batch`` (type ``k8sjobs``), for example as an environment variable::

    AIRFLOW_CONN_GKE_BATCH='{"conn_type": "k8sjobs",
      "extra": {"project": "my-project", "location": "europe-west1", "cluster": "batch",
                "namespace": "batch"}}'
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG

from airflow_k8s_jobs import KubeJobOperator

with DAG(
    dag_id="gke_batch_job",
    schedule="@daily",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    tags=["airflow-k8s-jobs", "example"],
) as dag:
    preprocess = KubeJobOperator(
        task_id="preprocess",
        cluster_conn_id="gke_batch",
        namespace="batch",
        image="task-python:1.0",
        cmds=["python"],
        arguments=["pre-task.py", "--date", "{{ ds }}"],
        env={"RUN_ID": "{{ run_id }}"},
        container_resources={"requests": {"cpu": "1", "memory": "2Gi"}},
        capacity_timeout=timedelta(hours=1),
    )

    train = KubeJobOperator(
        task_id="train",
        cluster_conn_id="gke_batch",
        namespace="batch",
        image="task-python:1.0",
        cmds=["python"],
        arguments=["train.py", "--date", "{{ ds }}"],
        node_pool="gpu",
        container_resources={"limits": {"nvidia.com/gpu": "1"}},
        backoff_limit=2,
        capacity_timeout=timedelta(hours=2),
    )

    preprocess >> train
