"""Test-only DAGs: the operators' contract with Airflow (tests/e2e/test_operator_contract.py).

- Only the manifest argument (``job``, ``workflow``) is ever read as a template file: strings
  such as ``"result.json"`` elsewhere stay strings.
- The manifest as submitted is a rendered template field (``rendered_manifest``).
- Bad input and pods that cannot run fail the task at once; a Job that failed is retried.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG

from airflow_k8s_jobs import ArgoWorkflowOperator, KubeJobOperator

START = datetime(2026, 11, 1)


def contract_dag(dag_id: str, **default_args: object) -> DAG:
    return DAG(
        dag_id,
        schedule=None,
        start_date=START,
        catchup=False,
        tags=["airflow-k8s-jobs", "test"],
        default_args={"cluster_conn_id": "gke_batch", **default_args},
    )


# Strings ending in .json / .yaml / .yml in every templated argument but the manifest.
with contract_dag("contract_templating") as contract_templating:
    KubeJobOperator(
        task_id="quick",
        image="contract/app:1",
        cmds=["/app/run", "pipeline.yml"],
        arguments=["--out", "result.json", "--day", "{{ ds }}"],
        env={"CONFIG": "settings.yaml", "API_TOKEN": "not-for-the-ui"},
        labels={"output": "result.json"},
        annotations={"config": "settings.yaml"},
    )
    KubeJobOperator(task_id="from_file", job="operator_contract_job.yaml")
    KubeJobOperator.partial(task_id="mapped", image="contract/app:1").expand(
        arguments=[["--out", "part-0.json"], ["--out", "part-1.json"]]
    )
    ArgoWorkflowOperator(
        task_id="argo",
        workflow="operator_contract_workflow.yml",
        parameters={"out": "result.json", "db_password": "not-for-the-ui-either"},
    )

# Each task fails on its first try, whatever its retries.
with contract_dag(
    "contract_no_retry", retries=2, retry_delay=timedelta(seconds=0)
) as contract_no_retry:
    KubeJobOperator(
        task_id="forbidden_namespace",
        cluster_conn_id="gke_batch_restricted",
        namespace="team-b",
        image="contract/app:1",
    )
    KubeJobOperator(task_id="missing_file", job="no_such_manifest.yaml")
    ArgoWorkflowOperator(
        task_id="undeclared_parameter",
        workflow="operator_contract_workflow.yml",
        parameters={"outt": "result.json"},
    )
    ArgoWorkflowOperator(  # passes the local checks; the Argo controller refuses it
        task_id="rejected_by_controller",
        workflow={
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "metadata": {"generateName": "contract-"},
            "spec": {
                "entrypoint": "main",
                "templates": [
                    {
                        "name": "main",
                        "container": {
                            "image": "contract/argo:1",
                            "args": ["{{inputs.parameters.missing}}"],
                        },
                    }
                ],
            },
        },
    )
    KubeJobOperator(task_id="bad_image", image="Registry.example.com/Team/App:1")
    KubeJobOperator(
        task_id="unpullable",
        image="contract/unpullable:1",
        image_pull_grace=timedelta(seconds=30),
    )

# The container exits 1: Airflow retries the task (a fresh Job per try).
with contract_dag("contract_retry", retries=1, retry_delay=timedelta(seconds=0)) as contract_retry:
    KubeJobOperator(task_id="exits_1", image="contract/exit-1:1", backoff_limit=0)
