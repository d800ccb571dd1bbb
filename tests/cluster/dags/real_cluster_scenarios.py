"""KubeJobOperator scenarios on the real control plane.

Run by tests/cluster/test_scenarios_on_real_control_plane.py.

What each container does is set by the node agent's behaviours (the cluster configuration of
that test module, matched by image); times are wall-clock seconds.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG

from airflow_k8s_jobs import KubeJobOperator

START = datetime(2026, 11, 1)


def scenario(dag_id: str, **default_args: object) -> DAG:
    return DAG(
        dag_id,
        schedule=None,
        start_date=START,
        catchup=False,
        tags=["airflow-k8s-jobs", "test"],
        default_args={"cluster_conn_id": "real_cluster", "deferrable": True, **default_args},
    )


# Requests more CPU than any node pool offers: the autoscaler says why, the task fails after
# capacity_timeout.
with scenario("rc_no_capacity") as rc_no_capacity:
    KubeJobOperator(
        task_id="huge",
        image="rc/huge:1",
        container_resources={"requests": {"cpu": "64"}},
        capacity_timeout=timedelta(seconds=5),
    )

# The API server accepts the reference; the kubelet rejects it (repository names are lower case).
with scenario("rc_bad_image") as rc_bad_image:
    KubeJobOperator(task_id="bad_image", image="Registry.example.com/Team/App:1")

# Runs on the one-node spot pool, where the test schedules a higher-priority pod: the real
# scheduler preempts this Job's pod, the Job controller replaces it.
with scenario("rc_preempted") as rc_preempted:
    KubeJobOperator(
        task_id="spot",
        image="rc/spot:1",
        node_pool="spot",
        container_resources={"requests": {"cpu": "1500m"}},
        backoff_limit=0,
    )

# Fails on the first try (the behaviour matches its try-number label), succeeds on the second.
with scenario("rc_retry", retries=1, retry_delay=timedelta(seconds=0)) as rc_retry:
    KubeJobOperator(task_id="flaky", image="rc/flaky:1", backoff_limit=0)

# Outlives its execution_timeout while deferred: the task fails and the Job is deleted.
with scenario("rc_timeout") as rc_timeout:
    KubeJobOperator(
        task_id="too_slow",
        image="rc/slow:1",
        execution_timeout=timedelta(seconds=8),
    )

# A plain Job: the test creates it first, as a worker that crashed after creating it would have.
with scenario("rc_reattach") as rc_reattach:
    KubeJobOperator(task_id="simple", image="rc/simple:1")
