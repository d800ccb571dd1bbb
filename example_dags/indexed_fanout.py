"""Sharded preprocessing as one Indexed Job: 8 shards, at most 4 pods at a time.

Use case: a day of raw events is split into 8 shards (by a hash of the user id). One Kubernetes
Job with ``completionMode: Indexed`` processes them: each pod reads the shard given by its
completion index (``JOB_COMPLETION_INDEX``, set by Kubernetes), writes cleaned Parquet files and
reports a small JSON summary as its container termination message (``/dev/termination-log``).

Kubernetes, not Airflow, runs the fan-out: one task, one Job, 8 completions with
``parallelism=4``. A shard that fails is retried on its own (``backoff_limit_per_index``)
without re-running the shards that already succeeded, and without using an Airflow retry.
The operator returns the termination messages as a list ordered by completion index (whatever
order the pods finished in), so the downstream task can check and combine them.

Connection ``gke_batch`` (type ``k8sjobs``), for example as an environment variable::

    AIRFLOW_CONN_GKE_BATCH='{"conn_type": "k8sjobs",
      "extra": {"project": "my-project", "location": "europe-west1", "cluster": "batch",
                "namespace": "batch"}}'
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

try:  # Airflow 3
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.decorators import task

from airflow_k8s_jobs import KubeJobOperator

SHARDS = 8
IMAGE = "europe-west1-docker.pkg.dev/my-project/batch/events-preprocess:2.3.0"

with DAG(
    dag_id="indexed_fanout",
    schedule="@daily",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=5)},
    tags=["airflow-k8s-jobs", "example"],
) as dag:
    preprocess_shards = KubeJobOperator(
        task_id="preprocess_shards",
        cluster_conn_id="gke_batch",
        namespace="batch",
        image=IMAGE,
        cmds=["python", "-m", "preprocess"],
        arguments=[
            "--date",
            "{{ ds }}",
            "--shards",
            str(SHARDS),
            "--input",
            "gs://my-project-raw/events/dt={{ ds }}/",
            "--output",
            "gs://my-project-clean/events/dt={{ ds }}/",
        ],
        env={"RUN_ID": "{{ run_id }}"},
        indexed=True,
        completions=SHARDS,
        parallelism=4,
        backoff_limit_per_index=2,
        container_resources={"requests": {"cpu": "1", "memory": "2Gi"}},
        capacity_timeout=timedelta(hours=1),
        execution_timeout=timedelta(hours=3),
    )

    @task
    def combine(messages: list[str]) -> dict[str, int]:
        """Check that every shard reported, in index order, and add up the rows."""
        summaries = [json.loads(message) for message in messages]
        shards = [summary["shard"] for summary in summaries]
        if shards != list(range(SHARDS)):
            raise ValueError(f"expected shards 0..{SHARDS - 1} in order, got {shards}")
        return {
            "shards": len(summaries),
            "rows_in": sum(summary["rows_in"] for summary in summaries),
            "rows_out": sum(summary["rows_out"] for summary in summaries),
        }

    combine(preprocess_shards.output)
