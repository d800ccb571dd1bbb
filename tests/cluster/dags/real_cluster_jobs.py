"""KubeJobOperator on the real control plane: run by test_airflow_on_real_control_plane.py.

One DAG of independent, deferrable tasks. What each container does is set by the node agent's
behaviour annotation (see simulated_k8s_cluster/behaviours.py); times are wall-clock seconds.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from airflow import DAG

from airflow_k8s_jobs import KubeJobOperator

BEHAVIOUR = "sim.airflow-k8s-jobs/behaviour"


def behaving(**behaviour: object) -> dict[str, str]:
    return {BEHAVIOUR: json.dumps(behaviour)}


with DAG(
    "real_cluster_jobs",
    schedule=None,
    start_date=datetime(2026, 11, 1),
    catchup=False,
    tags=["airflow-k8s-jobs", "test"],
    default_args={"cluster_conn_id": "real_cluster", "deferrable": True},
) as real_cluster_jobs:
    # Prints three lines, then leaves a termination message.
    KubeJobOperator(
        task_id="hello",
        image="busybox:1.36",
        annotations=behaving(
            seconds=3,
            stdout=["hello from $(POD_NAME)", "working", "all done"],
            terminationMessage="result-42",
        ),
    )

    # Four shards, two at a time; each reports its index.
    KubeJobOperator(
        task_id="shards",
        image="busybox:1.36",
        indexed=True,
        completions=4,
        parallelism=2,
        annotations=behaving(
            seconds=2,
            stdout="shard $(JOB_COMPLETION_INDEX)",
            terminationMessage="shard-$(JOB_COMPLETION_INDEX)",
        ),
    )

    # Every pod prints five lines and exits 3: one retry, then BackoffLimitExceeded.
    KubeJobOperator(
        task_id="failing",
        image="busybox:1.36",
        backoff_limit=1,
        annotations=behaving(
            seconds=1,
            exitCode=3,
            stdout=[f"failing line {i}" for i in range(1, 6)],
        ),
    )

    # Needs a GPU node: the gpu pool has none until the autoscaler adds one.
    KubeJobOperator(
        task_id="gpu",
        image="busybox:1.36",
        node_pool="gpu",
        container_resources={"limits": {"nvidia.com/gpu": "1"}},
        capacity_timeout=timedelta(minutes=3),
        annotations=behaving(seconds=2, stdout="on a gpu", terminationMessage="gpu-ok"),
    )
