"""Daily cleanup of finished Jobs left on the batch cluster.

Finished Jobs and their pods stay in etcd until something deletes them; tens of thousands of
them slow down every LIST the API server answers. ``KubeJobOperator`` sets
``ttlSecondsAfterFinished``, but Jobs created before that, or with the TTL turned off, pile up.
This DAG deletes, once a day, the Jobs created by this provider in namespace ``batch`` that
finished more than 7 days ago — at most 5 API requests per second, so that a backlog is worked
off without loading the control plane. Running Jobs are never touched.

The connection is the same ``gke_batch`` connection the Job DAGs use (type
``k8sjobs``); its identity needs ``list`` and ``delete`` on ``batch/v1`` jobs.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG

from airflow_k8s_jobs import KubeCleanupOperator

with DAG(
    dag_id="cleanup_jobs",
    schedule="@daily",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    tags=["airflow-k8s-jobs", "example", "maintenance"],
) as dag:
    KubeCleanupOperator(
        task_id="delete_finished_jobs",
        cluster_conn_id="gke_batch",
        namespaces=["batch"],
        older_than=timedelta(days=7),
        requests_per_second=5.0,
        max_deletions=10_000,  # a big backlog is worked off over a few daily runs (~35 min each)
        propagation_policy="Background",
        retries=2,
        retry_delay=timedelta(minutes=10),
    )
