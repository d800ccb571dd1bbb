"""One single-task Job DAG per fault scenario of tests/deployment/test_faults_deployed.py; each
runs once when unpaused. The container (``long-task.py SCENARIO``) runs as long as the test's
behaviour rule says."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG

from airflow_k8s_jobs import KubeJobOperator

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
)

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
