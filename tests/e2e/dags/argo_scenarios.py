"""Test-only DAGs: one ArgoWorkflowOperator scenario each (run by tests/e2e/test_argo_scenarios.py).

What the containers do (run time, output, exit code) is set by the tests on the simulated
cluster, matched by image and arguments.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow import DAG

from airflow_k8s_jobs import ArgoWorkflowOperator

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


def workflow(*steps: list[dict[str, Any]], templates: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "scn-"},
        "spec": {
            "entrypoint": "main",
            "arguments": {"parameters": [{"name": "size", "value": "1"}]},
            "templates": [{"name": "main", "steps": list(steps)}, *templates],
        },
    }


def container(name: str, image: str, *args: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "container": {"image": image, "args": list(args)}, **extra}


ITEM_INPUT = {"parameters": [{"name": "part"}]}

# prepare, then a fan-out over three parts; the tests make part b fail.
FAN_OUT = workflow(
    [{"name": "prepare", "template": "prepare"}],
    [
        {
            "name": "work",
            "template": "work",
            "arguments": {"parameters": [{"name": "part", "value": "{{item}}"}]},
            "withItems": ["a", "b", "c"],
        }
    ],
    templates=[
        container("prepare", "scn/argo:1", "prepare", "{{workflow.parameters.size}}"),
        container("work", "scn/argo:1", "work", "{{inputs.parameters.part}}", inputs=ITEM_INPUT),
    ],
)

ONE_STEP = workflow(
    [{"name": "only", "template": "only"}],
    templates=[container("only", "scn/argo-one:1", "only", "try {{ ti.try_number }}")],
)

with scenario("scn_argo_failure") as scn_argo_failure:
    ArgoWorkflowOperator(task_id="fan_out", workflow=FAN_OUT)

with scenario("scn_argo_one") as scn_argo_one:
    ArgoWorkflowOperator(task_id="one", workflow=ONE_STEP)

with scenario("scn_argo_sync") as scn_argo_sync:
    ArgoWorkflowOperator(task_id="sync", workflow=ONE_STEP, deferrable=False)

with scenario("scn_argo_retry", retries=1, retry_delay=timedelta(seconds=0)) as scn_argo_retry:
    ArgoWorkflowOperator(task_id="flaky", workflow=ONE_STEP)

with scenario("scn_argo_timeout") as scn_argo_timeout:
    ArgoWorkflowOperator(task_id="slow", workflow=ONE_STEP, execution_timeout=timedelta(seconds=4))

with scenario("scn_argo_timeout_kept") as scn_argo_timeout_kept:
    ArgoWorkflowOperator(
        task_id="slow",
        workflow=ONE_STEP,
        execution_timeout=timedelta(seconds=4),
        delete_on_give_up=False,
    )

# Bad input: each fails before anything is created.
with scenario("scn_argo_undeclared") as scn_argo_undeclared:
    ArgoWorkflowOperator(task_id="undeclared", workflow=FAN_OUT, parameters={"sise": 3})

with scenario("scn_argo_undeclared_template") as scn_argo_undeclared_template:
    ArgoWorkflowOperator(
        task_id="undeclared",
        workflow_template="daily-report",
        parameters={"date": "{{ ds }}", "regoin": "us-central1"},
    )

with scenario("scn_argo_missing_template") as scn_argo_missing_template:
    ArgoWorkflowOperator(task_id="missing", workflow_template="daily-reprot")

with scenario("scn_argo_bad_reference") as scn_argo_bad_reference:
    ArgoWorkflowOperator(
        task_id="bad_reference",
        workflow=workflow(
            [{"name": "only", "template": "onyl"}],
            templates=[container("only", "scn/argo-one:1", "only")],
        ),
    )
