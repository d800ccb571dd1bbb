"""One single-task DAG per scenario of tests/cluster/test_deployment_on_real_control_plane.py,
each run once by the deployment's scheduler as soon as it is parsed (the deployment does not
pause new DAGs). What each container does is set by the node agent's behaviour annotation;
times are wall-clock seconds, long enough for the faults to come while the tasks wait.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from airflow import DAG

from airflow_k8s_jobs import KubeJobOperator

BEHAVIOUR = "sim.airflow-k8s-jobs/behaviour"

SCENARIOS: dict[str, dict[str, Any]] = {
    # connection, then the behaviour: how long the container runs, its output and exit code.
    "rd_ok": {"conn": "real_cluster_token", "seconds": 15, "terminationMessage": "ok-42"},
    "rd_fails": {"conn": "real_cluster", "seconds": 15, "exitCode": 3},
    "rd_scheduler_restarted": {"conn": "real_cluster", "seconds": 45},
    "rd_api_server_restarted": {"conn": "real_cluster", "seconds": 45},
    "rd_triggerer_killed": {"conn": "real_cluster", "seconds": 100},
    "rd_job_deleted": {"conn": "real_cluster", "seconds": 3600},
}

for dag_id, scenario in SCENARIOS.items():
    behaviour = {k: v for k, v in scenario.items() if k != "conn"}
    behaviour.setdefault("terminationMessage", f"{dag_id}-result")
    behaviour["stdout"] = [f"{dag_id}: working", f"{dag_id}: done"]
    with DAG(
        dag_id,
        schedule="@once",
        start_date=datetime(2026, 11, 1),
        catchup=False,
        tags=["airflow-k8s-jobs", "test"],
    ) as dag:
        KubeJobOperator(
            task_id="work",
            cluster_conn_id=scenario["conn"],
            deferrable=True,
            image="busybox:1.36",
            backoff_limit=0,
            retries=0,
            execution_timeout=timedelta(minutes=10),
            annotations={BEHAVIOUR: json.dumps(behaviour)},
        )
    globals()[dag_id] = dag
