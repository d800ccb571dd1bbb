"""The example DAGs under a real deployment: the scheduler schedules, a LocalExecutor worker
submits and defers, the triggerer process waits, a new worker resumes and finishes."""

from __future__ import annotations

import pytest
from demo import NAMESPACE

from airflow_k8s_jobs.manifests.names import TASK_ID

from .conftest import EXAMPLE_DAGS, Deployed
from .deployment import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DAGS = {
    "gke_batch_job.py": EXAMPLE_DAGS / "gke_batch_job.py",
    "argo_seed_workflow.py": EXAMPLE_DAGS / "argo_seed_workflow.py",
    "workflows": EXAMPLE_DAGS / "workflows",
}


def test_job_and_workflow_dags_run_through_scheduler_worker_and_triggerer(
    deployed: Deployed,
) -> None:
    airflow, cluster = deployed.airflow, deployed.cluster
    for dag_id in ("gke_batch_job", "argo_seed_workflow"):
        airflow.unpause(dag_id)
    job_run = airflow.first_run("gke_batch_job")
    workflow_run = airflow.first_run("argo_seed_workflow")

    # Live logs: the training pod's first line is in the task's log while its Job still runs
    # (the trigger follows the pod's log from the triggerer process).
    def live_line() -> str | None:
        log = airflow.task_log("gke_batch_job", job_run, "train")
        return log if "| epoch 1/2" in log else None

    wait_until(live_line, timeout=600, what="the training pod's first line in the task log")
    (train_job,) = cluster.list("jobs", NAMESPACE, {TASK_ID: "train"})
    assert not train_job["status"].get("completionTime"), train_job["status"]
    assert airflow.task_state("gke_batch_job", job_run, "train") == "deferred"

    job_state = airflow.wait_for_run("gke_batch_job", job_run, timeout=600)
    workflow_state = airflow.wait_for_run("argo_seed_workflow", workflow_run, timeout=600)

    job_tasks = airflow.tasks("gke_batch_job", job_run)
    workflow_tasks = airflow.tasks("argo_seed_workflow", workflow_run)
    assert (job_state, workflow_state) == ("success", "success"), (
        job_tasks,
        workflow_tasks,
        airflow.task_log("gke_batch_job", job_run, "train")[-6000:],
        airflow.component_logs()[-6000:],
    )
    # Each operator deferred, its trigger ran in the triggerer process, and a new worker
    # resumed it: the trigger's lines are in the task's log beside the worker's.
    train_log = airflow.task_log("gke_batch_job", job_run, "train")
    assert "Pausing task as DEFERRED" in train_log or "deferr" in train_log.lower()
    assert "succeeded: 1/1 completions" in train_log
    # One Job per task, one Workflow per run: resuming re-attached, nothing was created twice,
    # and no retry was spent.
    assert len(cluster.list("jobs", NAMESPACE)) == 2
    assert len(cluster.list("workflows", NAMESPACE)) == 1
    assert {t.try_number for t in [*job_tasks.values(), *workflow_tasks.values()]} == {1}
    report = airflow.xcom("argo_seed_workflow", workflow_run, "report")
    assert report["fan_out"] == 3 and report["task2"], report
