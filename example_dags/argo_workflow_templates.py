"""Submit Argo Workflows from a WorkflowTemplate and a ClusterWorkflowTemplate, with parameters.

The templates live on the cluster (``workflows/daily-report.yaml`` and
``workflows/gcs-cleanup.yaml`` here, applied with ``kubectl apply``), so the platform team owns
them and DAGs only pass parameters — like ``argo submit --from workflowtemplate/daily-report -p
date=…``. The parameters are checked against what the template declares before anything is
submitted: a misspelt name, or a value outside a parameter's ``enum``, fails the task at once.
The report's global output parameter ``summary`` comes back through XCom.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG

from airflow_k8s_jobs import ArgoWorkflowOperator

with DAG(
    dag_id="argo_workflow_templates",
    schedule="@daily",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    tags=["airflow-k8s-jobs", "example", "argo"],
) as dag:
    report = ArgoWorkflowOperator(
        task_id="daily_report",
        cluster_conn_id="gke_batch",
        namespace="batch",
        workflow_template="daily-report",
        parameters={"date": "{{ ds }}", "region": "europe-west1"},
        execution_timeout=timedelta(hours=1),
    )

    cleanup = ArgoWorkflowOperator(
        task_id="cleanup_scratch",
        cluster_conn_id="gke_batch",
        namespace="batch",
        cluster_workflow_template="gcs-cleanup",
        parameters={"prefix": "gs://my-project-scratch/daily-report/{{ ds }}/"},
        shutdown_on_kill="Stop",
    )

    report >> cleanup
