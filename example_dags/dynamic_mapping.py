"""Dynamic task mapping: one Kubernetes Job per partition that landed in the data interval.

Use case: regional exports arrive at different times and not every region delivers every day.
An upstream task lists the partitions of the data interval (here a fixed list; in practice a
``gcs`` listing or a query), and ``KubeJobOperator.partial(...).expand(arguments=...)`` maps
one task — and so one Job — over them. Each mapped task instance gets its own deterministic Job
name (``…-m<map index>-t<try>-…``) and labels carrying its map index, so a retry of one
partition creates a new Job for that partition only, and a worker that crashes re-attaches to
the right Job. A final task collects the termination messages of all mapped Jobs.

Connection ``gke_batch`` (type ``k8sjobs``), for example as an environment variable::

    AIRFLOW_CONN_GKE_BATCH='{"conn_type": "k8sjobs",
      "extra": {"project": "my-project", "location": "europe-west1", "cluster": "batch",
                "namespace": "batch"}}'
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

try:  # Airflow 3
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.decorators import task

from airflow_k8s_jobs import KubeJobOperator

IMAGE = "europe-west1-docker.pkg.dev/my-project/batch/region-export:1.8.2"
REGIONS = ("europe-west1", "us-central1", "asia-northeast1")

with DAG(
    dag_id="dynamic_mapping",
    schedule="@daily",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10)},
    tags=["airflow-k8s-jobs", "example"],
) as dag:

    @task
    def list_partitions(data_interval_start: Any = None) -> list[list[str]]:
        """The container arguments of one export per partition of the data interval."""
        day = data_interval_start.strftime("%Y-%m-%d")
        return [
            [
                "--region",
                region,
                "--date",
                day,
                "--output",
                f"gs://my-project-exports/{region}/dt={day}/",
            ]
            for region in REGIONS
        ]

    export_partition = KubeJobOperator.partial(
        task_id="export_partition",
        cluster_conn_id="gke_batch",
        namespace="batch",
        image=IMAGE,
        cmds=["python", "-m", "export"],
        container_resources={"requests": {"cpu": "2", "memory": "4Gi"}},
        backoff_limit=1,
        execution_timeout=timedelta(hours=2),
    ).expand(arguments=list_partitions())

    @task
    def report(results: list[list[str]]) -> dict[str, int]:
        """Rows exported per region, from each mapped Job's termination message."""
        rows: dict[str, int] = {}
        for messages in results:
            for message in messages:
                summary = json.loads(message)
                rows[summary["region"]] = summary["rows"]
        return rows

    report(export_partition.output)
