"""The example DAGs under a real deployment: the scheduler schedules, a LocalExecutor worker
submits and defers, the triggerer process waits, a new worker resumes and finishes. Then
everything the deployment keeps is searched for the cluster's token."""

from __future__ import annotations

from typing import Any

import pytest
from demo import NAMESPACE

from airflow_k8s_jobs.manifests.names import TASK_ID
from tests.secret_scan import Secrets, as_text, decrypted_trigger_kwargs, deployment_kept

from .conftest import DEPLOYMENT_DAGS, EXAMPLE_DAGS, INLINE_CONN_ID, Deployed
from .deployment import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DAGS = {
    "gke_batch_job.py": EXAMPLE_DAGS / "gke_batch_job.py",
    "argo_seed_workflow.py": EXAMPLE_DAGS / "argo_seed_workflow.py",
    "workflows": EXAMPLE_DAGS / "workflows",
    "deployed_secrets.py": DEPLOYMENT_DAGS / "deployed_secrets.py",
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


def test_the_token_is_nowhere_in_what_the_deployment_keeps(deployed: Deployed) -> None:
    """``deployed_secrets`` runs a Job and a Workflow that succeed and a Job that fails through a
    connection holding the token inline (the other connection holds it in a kubeconfig file);
    its trigger rows are captured while the tasks are deferred (they are deleted after). Then
    the token is searched for in the task logs, the scheduler's, triggerer's (and API
    server's, DAG processor's) logs, every row of every metadata table — XComs, rendered
    fields, serialized DAGs, DAG code, the audit log … — and the trigger rows, raw and
    decrypted."""
    airflow, cluster = deployed.airflow, deployed.cluster
    secrets = Secrets(cluster.token)
    # The connections do bear the token: the search would find it.
    assert secrets.found_in(airflow.env[f"AIRFLOW_CONN_{INLINE_CONN_ID.upper()}"])
    assert secrets.found_in(deployed.kubeconfig.read_text())
    for scenario, exit_code in (("secrets_ok", 0), ("secrets_fails", 1)):
        cluster.add_behaviour(
            {
                "match": {"image": "task-python:1.0", "args": f"long-task.py {scenario}"},
                "seconds": 1500,
                "exitCode": exit_code,
                "stdout": f"{scenario}: done",
            }
        )
    airflow.unpause("deployed_secrets")
    run_id = airflow.first_run("deployed_secrets")
    fernet_key = airflow.env["AIRFLOW__CORE__FERNET_KEY"]
    triggers: dict[Any, str] = {}  # trigger id → the row, its kwargs decrypted too

    def finished() -> str | None:
        for row in airflow.query("SELECT * FROM trigger"):  # every column, as stored
            triggers[row[0]] = "\n".join(as_text(value) for value in row)
        for trigger_id, _, kwargs in airflow.trigger_rows():
            decrypted = decrypted_trigger_kwargs(as_text(kwargs), fernet_key)
            triggers[trigger_id] = triggers.get(trigger_id, "") + "\n" + decrypted
        state = airflow.run_state("deployed_secrets", run_id)
        return state if state in ("success", "failed") else None

    state = wait_until(finished, 420, "the deployed_secrets run to finish", interval=0.5)
    tasks = airflow.tasks("deployed_secrets", run_id)
    assert state == "failed", tasks
    assert {t: row.state for t, row in tasks.items()} == {
        "job_ok": "success",
        "argo_ok": "success",
        "job_fails": "failed",
    }, airflow.component_logs()[-4000:]
    assert len(triggers) >= 3, triggers  # each task's trigger row was seen while it waited

    searched, database, rows = deployment_kept(airflow, triggers.values())
    assert not secrets.leaks(searched)
    # What was searched holds what the runs left.
    assert rows["xcom"] > 0 and rows["rendered_task_instance_fields"] > 0, rows
    assert rows["serialized_dag"] > 0 and rows["task_instance"] >= 5, rows
    assert "deployed_secrets" in database and INLINE_CONN_ID in database
    assert "secrets_ok: done" in airflow.task_log("deployed_secrets", run_id, "job_ok")
