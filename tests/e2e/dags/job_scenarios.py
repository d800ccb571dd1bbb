"""Test-only DAGs: one KubeJobOperator scenario each (run by tests/e2e/test_job_scenarios.py).

The containers' behaviour (run time, output, exit code, preemption ...) is set by the tests on
the simulated cluster, matched by image.
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
        default_args={"cluster_conn_id": "gke_batch", "namespace": "batch", **default_args},
    )


# An Indexed fan-out in three waves; index 2's first pod fails and is retried by the Job.
with scenario("scn_fanout") as scn_fanout:
    KubeJobOperator(
        task_id="fanout",
        image="scn/fanout:1",
        indexed=True,
        completions=6,
        parallelism=2,
        backoff_limit=1,
    )

# A Job whose pods exit 3 after printing 30 lines.
with scenario("scn_failure") as scn_failure:
    KubeJobOperator(task_id="fail", image="scn/fail:1", backoff_limit=1)

# The first pod is preempted; the Job replaces it without counting a failure.
with scenario("scn_preempted") as scn_preempted:
    KubeJobOperator(task_id="spot", image="scn/spot:1", backoff_limit=0)

# Needs a GPU node: waits for the autoscaler to add one.
with scenario("scn_scale_up") as scn_scale_up:
    KubeJobOperator(
        task_id="gpu",
        image="scn/gpu:1",
        node_pool="gpu",
        container_resources={"limits": {"nvidia.com/gpu": "1"}},
        capacity_timeout=timedelta(minutes=5),
    )

# Requests more CPU than any node pool offers.
with scenario("scn_no_capacity") as scn_no_capacity:
    KubeJobOperator(
        task_id="huge",
        image="scn/huge:1",
        container_resources={"requests": {"cpu": "64"}},
        capacity_timeout=timedelta(seconds=3),
    )

# The same, kept for inspection after the task gives up on it.
with scenario("scn_no_capacity_kept") as scn_no_capacity_kept:
    KubeJobOperator(
        task_id="huge",
        image="scn/huge:1",
        container_resources={"requests": {"cpu": "64"}},
        capacity_timeout=timedelta(seconds=3),
        delete_on_give_up=False,
    )

# A node pool the cluster does not have: no node ever fits the pod.
with scenario("scn_unknown_pool") as scn_unknown_pool:
    KubeJobOperator(
        task_id="nowhere",
        image="scn/simple:1",
        node_pool="no-such-pool",
        capacity_timeout=timedelta(seconds=3),
    )

# The client accepts the reference; the kubelet rejects it (repository names are lower case).
with scenario("scn_bad_image") as scn_bad_image:
    KubeJobOperator(task_id="bad_image", image="Registry.example.com/Team/App:1")

# Fails on the first try, succeeds on the second.
with scenario("scn_retry", retries=1, retry_delay=timedelta(seconds=0)) as scn_retry:
    KubeJobOperator(task_id="flaky", image="scn/flaky:1", backoff_limit=0)

# Try 1 loses its Job's result (the API fails while it reads the pods); try 2 takes the Job over.
with scenario("scn_lost_result", retries=1, retry_delay=timedelta(seconds=0)) as scn_lost_result:
    KubeJobOperator(task_id="lost", image="scn/lost:1")

# A plain Job (re-attach after a crash between create and defer).
with scenario("scn_simple") as scn_simple:
    KubeJobOperator(task_id="simple", image="scn/simple:1")

# Bad input: each fails before anything is created.
with scenario("scn_bad_yaml") as scn_bad_yaml:
    KubeJobOperator(task_id="bad_yaml", job="job_scenarios_malformed.yaml")

with scenario("scn_not_a_job") as scn_not_a_job:
    KubeJobOperator(
        task_id="not_a_job",
        job={
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "a-pod"},
            "spec": {"containers": [{"name": "main", "image": "scn/simple:1"}]},
        },
    )

with scenario("scn_missing_image") as scn_missing_image:
    KubeJobOperator(task_id="missing_image", cmds=["python"], arguments=["main.py"])

with scenario("scn_namespace_not_allowed") as scn_namespace_not_allowed:
    KubeJobOperator(
        task_id="other_namespace",
        cluster_conn_id="gke_batch_restricted",
        namespace="team-b",
        image="scn/simple:1",
    )

with scenario("scn_invalid_label") as scn_invalid_label:
    KubeJobOperator(task_id="bad_label", image="scn/simple:1", labels={"team name!": "data"})
