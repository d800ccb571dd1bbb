"""A Job queued in a Kueue LocalQueue: it runs when the team's quota has room.

Use case: several teams share the batch cluster, and Kueue divides it: team A's Jobs go to the
LocalQueue ``team-a-queue`` in namespace ``batch``, which feeds a ClusterQueue with a CPU,
memory and GPU quota. ``queue_name="team-a-queue"`` labels the Job
``kueue.x-k8s.io/queue-name`` and creates it suspended; Kueue creates a ``Workload`` for it,
admits it when the quota allows and un-suspends the Job.

While the Workload waits for quota (``QuotaReserved`` is ``False`` with reason ``Pending``) the
task is deferred and counts the wait against ``capacity_timeout``, logging Kueue's reason
("insufficient unused quota for cpu in flavor default, 4 more needed"). A LocalQueue that does
not exist fails the task at once instead of waiting for ever.

Connection ``gke_batch`` (type ``k8sjobs``), for example as an environment variable::

    AIRFLOW_CONN_GKE_BATCH='{"conn_type": "k8sjobs",
      "extra": {"project": "my-project", "location": "europe-west1", "cluster": "batch",
                "namespace": "batch"}}'

The cluster needs Kueue with a LocalQueue ``team-a-queue`` in ``batch``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG

from airflow_k8s_jobs import KubeJobOperator

IMAGE = "europe-west1-docker.pkg.dev/my-project/batch/feature-backfill:3.0.4"

with DAG(
    dag_id="kueue_queued",
    schedule="@daily",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=10)},
    tags=["airflow-k8s-jobs", "example", "kueue"],
) as dag:
    backfill_features = KubeJobOperator(
        task_id="backfill_features",
        cluster_conn_id="gke_batch",
        namespace="batch",
        image=IMAGE,
        cmds=["python", "-m", "features.backfill"],
        arguments=[
            "--from",
            "{{ data_interval_start | ds }}",
            "--to",
            "{{ data_interval_end | ds }}",
            "--table",
            "my-project.features.user_daily",
        ],
        queue_name="team-a-queue",
        parallelism=2,
        completions=2,
        container_resources={"requests": {"cpu": "2", "memory": "8Gi"}},
        # Waiting in the queue counts as waiting for capacity.
        capacity_timeout=timedelta(hours=6),
        execution_timeout=timedelta(hours=8),
    )
