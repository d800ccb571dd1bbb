"""Seed case: an Argo Workflow scheduled hourly by Airflow instead of a CronJob running
``argo submit workflow.yml``.

``workflows/workflow.yml`` is the workflow of the seed write-up, unmodified: ``task1`` writes a
JSON list, ``task2-3`` fans out over it (``withParam``) into nested steps ``task2`` (R) and
``task3`` (Python), handing values over through output parameters. What the CronJob could not
do, Airflow does: the schedule with catch-up and backfill, re-runs by clearing the task, each run
rendering the *current* file, the workflow's ``max`` overridden from the DAG's params (like
``argo submit -p max=30``), the task waiting without a worker slot, failed steps' logs in the
task log, the Workflow stopped when the task is killed, and a TTL so finished Workflows do not
pile up.

Trigger a run with another fan-out: ``airflow dags trigger argo_seed_workflow -c '{"max": 5}'``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from airflow import DAG

try:
    from airflow.sdk import Param, task
except ImportError:  # Airflow 2
    from airflow.decorators import task
    from airflow.models.param import Param

from airflow_k8s_jobs import ArgoWorkflowOperator

with DAG(
    dag_id="argo_seed_workflow",
    schedule="@hourly",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    max_active_runs=1,
    params={"max": Param(3, type="integer", minimum=1, maximum=30, description="fan-out")},
    tags=["airflow-k8s-jobs", "example", "argo"],
) as dag:
    workflow_sample = ArgoWorkflowOperator(
        task_id="workflow_sample",
        cluster_conn_id="gke_batch",
        namespace="batch",
        workflow="workflows/workflow.yml",
        parameters={"max": "{{ params.max }}"},
        execution_timeout=timedelta(minutes=50),
        retries=1,
    )

    @task
    def report(result: dict[str, Any]) -> dict[str, Any]:
        """What the workflow produced, from its output parameters."""
        outputs = result["node_outputs"]
        values = json.loads(outputs["[0].task1"]["results"])
        scores = {
            name: params["result"]
            for name, params in sorted(outputs.items())
            if name.endswith(".task2") and "result" in params
        }
        return {"workflow": result["name"], "fan_out": len(values), "task2": scores}

    report(workflow_sample.output)
