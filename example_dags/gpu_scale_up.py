"""Nightly fine-tuning on a GPU node pool that scales from zero.

Use case: the batch cluster has a ``gpu`` node pool with autoscaling from 0 nodes (GPUs are
expensive to keep idle). GKE taints GPU nodes ``nvidia.com/gpu=present:NoSchedule``. The
training Job asks for the pool (``node_pool="gpu"`` becomes a required node affinity on
``cloud.google.com/gke-nodepool`` plus a toleration) and for one GPU; the operator adds the
``nvidia.com/gpu`` toleration because the container requests a GPU.

The pod is first ``Unschedulable``; the cluster autoscaler reacts with ``TriggeredScaleUp`` and
a node is Ready a few minutes later. The task waits deferred — no worker slot held — and the
status line in the task log says "waiting for capacity: scale-up triggered 2m ago". It fails
only if the pod still has no node after ``capacity_timeout`` (2 hours here, because GPU stock
can run out in a zone), with the scheduler's reason in the error. Once the Job succeeded, the
model's evaluation metrics (the container's termination message) go to XCom and a downstream
task registers the checkpoint.

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

IMAGE = "europe-west1-docker.pkg.dev/my-project/ml/ranker-train:5.1.0"

with DAG(
    dag_id="gpu_scale_up",
    schedule="0 2 * * *",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=15)},
    tags=["airflow-k8s-jobs", "example", "gpu"],
) as dag:
    fine_tune = KubeJobOperator(
        task_id="fine_tune",
        cluster_conn_id="gke_batch",
        namespace="batch",
        image=IMAGE,
        cmds=["python", "-m", "ranker.train"],
        arguments=[
            "--train-from",
            "{{ data_interval_start | ds }}",
            "--train-to",
            "{{ data_interval_end | ds }}",
            "--epochs",
            "3",
        ],
        env={"RUN_DATE": "{{ ds }}", "CHECKPOINT_BUCKET": "gs://my-project-models/ranker"},
        node_pool="gpu",
        container_resources={
            "requests": {"cpu": "4", "memory": "16Gi"},
            "limits": {"nvidia.com/gpu": "1"},
        },
        backoff_limit=1,
        capacity_timeout=timedelta(hours=2),
        execution_timeout=timedelta(hours=8),
    )

    @task
    def register_model(messages: list[str]) -> str:
        """Register the checkpoint if the evaluation loss is good enough."""
        metrics = json.loads(messages[-1])
        if metrics["eval_loss"] > 0.5:
            raise ValueError(f"eval_loss {metrics['eval_loss']} is above 0.5; not registering")
        return str(metrics["checkpoint"])

    register_model(fine_tune.output)
