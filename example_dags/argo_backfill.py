"""Backfill with Argo Workflows: one Workflow per day of a date range, each for its own interval.

A CronWorkflow runs only the latest missed schedule and its backfill is an alpha CLI command;
here every run of the DAG submits a Workflow for its data interval, so catching up after an
outage, or re-processing November, is Airflow's ordinary backfill::

    airflow backfill create --dag-id argo_backfill --from-date 2026-11-01 --to-date 2026-11-07
    airflow dags backfill argo_backfill -s 2026-11-01 -e 2026-11-07      # Airflow 2

Each Workflow gets its day as parameters and ``workflows.argoproj.io/scheduled-time``
(``{{workflow.scheduledTime}}`` in Argo: when the schedule fired, the end of the data interval),
while Airflow expressions in the manifest (``{{ run_id }}``) are rendered and Argo's own
(``{{item}}``, ``{{workflow.name}}``) are left to Argo. Re-running a day is clearing its task:
the new try submits a fresh Workflow with the definition as it is now, and the old one stays
until its TTL.
"""

from __future__ import annotations

from datetime import datetime

from airflow import DAG

from airflow_k8s_jobs import ArgoWorkflowOperator

PARTITION_WORKFLOW = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Workflow",
    "metadata": {"generateName": "events-partition-"},
    "spec": {
        "entrypoint": "partition",
        "arguments": {"parameters": [{"name": "day"}, {"name": "next-day"}]},
        "templates": [
            {
                "name": "partition",
                "steps": [
                    [
                        {
                            "name": "load",
                            "template": "load",
                            "arguments": {"parameters": [{"name": "table", "value": "{{item}}"}]},
                            "withItems": ["clicks", "views", "orders"],
                        }
                    ]
                ],
            },
            {
                "name": "load",
                "inputs": {"parameters": [{"name": "table"}]},
                "retryStrategy": {"limit": 2, "retryPolicy": "OnFailure"},
                "container": {
                    "image": "europe-west1-docker.pkg.dev/my-project/batch/events-load:1.8.0",
                    "args": [
                        "--table",
                        "{{inputs.parameters.table}}",
                        "--from",
                        "{{workflow.parameters.day}}",
                        "--to",
                        "{{workflow.parameters.next-day}}",
                        "--run",
                        "{{workflow.name}}",
                        "--airflow-run",
                        "{{ run_id }}",
                    ],
                },
            },
        ],
    },
}

with DAG(
    dag_id="argo_backfill",
    schedule="@daily",
    start_date=datetime(2026, 11, 1),
    catchup=True,
    max_active_runs=3,
    tags=["airflow-k8s-jobs", "example", "argo"],
) as dag:
    ArgoWorkflowOperator(
        task_id="load_partition",
        cluster_conn_id="gke_batch",
        namespace="batch",
        workflow=PARTITION_WORKFLOW,
        parameters={
            "day": "{{ ds }}",
            "next-day": "{{ macros.ds_add(ds, 1) }}",
        },
    )
