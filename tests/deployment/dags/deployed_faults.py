"""One single-task DAG per fault scenario of tests/deployment/test_faults_deployed.py (a Job, or
for ``WORKFLOW_SCENARIOS`` an Argo Workflow of one step); each runs once when unpaused. The
container (``long-task.py SCENARIO``) runs as long as the test's behaviour rule says."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG

from airflow_k8s_jobs import ArgoWorkflowOperator, KubeJobOperator

SCENARIOS = (
    "triggerer_killed",
    "scheduler_killed",
    "api_server_restarted",
    "token_rotated",
    "credentials_revoked",
    "resume_503",
    "job_deleted",
    "pod_preempted",
    "node_lost",
    "worker_killed",
    "throttled_429",
    "unavailable_503",
    "connections_reset",
)

WORKFLOW_SCENARIOS = {
    "workflow_api_server_restarted": 1,
    "workflow_deleted": 0,
}
"""Scenario → retries: a deleted Workflow fails its try, and that is the outcome checked."""

for scenario in SCENARIOS:
    with DAG(
        dag_id=f"deployed_{scenario}",
        schedule="@once",
        start_date=datetime(2026, 1, 1),
        catchup=False,
        tags=["airflow-k8s-jobs", "fault"],
    ) as dag:
        KubeJobOperator(
            task_id="work",
            cluster_conn_id="gke_batch",
            namespace="batch",
            image="task-python:1.0",
            cmds=["python"],
            arguments=["long-task.py", scenario],
            container_resources={"requests": {"cpu": "500m", "memory": "1Gi"}},
            retries=1,
            retry_delay=timedelta(seconds=5),
            execution_timeout=timedelta(minutes=15),
        )
    globals()[dag.dag_id] = dag


for scenario, retries in WORKFLOW_SCENARIOS.items():
    with DAG(
        dag_id=f"deployed_{scenario}",
        schedule="@once",
        start_date=datetime(2026, 1, 1),
        catchup=False,
        tags=["airflow-k8s-jobs", "fault"],
    ) as dag:
        ArgoWorkflowOperator(
            task_id="work",
            cluster_conn_id="gke_batch",
            namespace="batch",
            workflow={
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Workflow",
                "metadata": {"generateName": f"deployed-{scenario.replace('_', '-')}-"},
                "spec": {
                    "entrypoint": "main",
                    "templates": [
                        {
                            "name": "main",
                            "container": {
                                "image": "task-python:1.0",
                                "command": ["python"],
                                "args": ["long-task.py", scenario],
                            },
                        }
                    ],
                },
            },
            retries=retries,
            retry_delay=timedelta(seconds=5),
            execution_timeout=timedelta(minutes=15),
        )
    globals()[dag.dag_id] = dag
