"""Faults injected while a task waits, under a real deployment: each task must end as it would
without the fault — success, on its first try, with exactly one Job (or Workflow) — or, where
the fault takes its object away, fail once saying so; never hang."""

from __future__ import annotations

import itertools
import os
import signal
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest
from demo import NAMESPACE

from airflow_k8s_jobs.manifests.names import DAG_ID

from .conftest import DEPLOYMENT_DAGS, Deployed
from .deployment import AirflowDeployment, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DAGS = {"deployed_faults.py": DEPLOYMENT_DAGS / "deployed_faults.py"}

RUN_SECONDS = 2500
"""How long each scenario's container runs, in simulated seconds (25 wall seconds)."""

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
JOB_UID_SELECTOR = "batch.kubernetes.io/controller-uid="
"""How the resuming task selects its Job's pods (the Job's uid follows)."""


def start_scenario(deployed: Deployed, scenario: str, seconds: float = RUN_SECONDS) -> str:
    """Unpause the scenario's DAG and wait until its task is deferred; returns the run id."""
    deployed.cluster.add_behaviour(
        {
            "match": {"image": "task-python:1.0", "args": f"long-task.py {scenario}"},
            "seconds": seconds,
            "stdout": f"{scenario}: done",
        }
    )
    dag_id = f"deployed_{scenario}"
    deployed.airflow.unpause(dag_id)
    run_id = deployed.airflow.first_run(dag_id)
    deployed.airflow.wait_for_task_state(dag_id, run_id, "work", {"deferred"}, timeout=300)
    return run_id


def wait_for_the_trigger_to_watch(deployed: Deployed) -> None:
    """The deferred task's trigger has its watch open on the cluster (it may start a while
    after the task deferred); no other client of the deployment watches."""
    wait_until(lambda: deployed.cluster.open_watches > 0, 180, "the trigger's watch")


def jobs_of(deployed: Deployed, scenario: str) -> list[dict[str, Any]]:
    prefix = f"deployed-{scenario.replace('_', '-')}-work-"
    return [
        job
        for job in deployed.cluster.list("jobs", NAMESPACE)
        if job["metadata"]["name"].startswith(prefix)
    ]


def workflows_of(deployed: Deployed, scenario: str) -> list[dict[str, Any]]:
    return deployed.cluster.list("workflows", NAMESPACE, {DAG_ID: f"deployed_{scenario}"})


def job_finished(deployed: Deployed, scenario: str) -> bool:
    (job,) = jobs_of(deployed, scenario)
    conditions = job.get("status", {}).get("conditions") or []
    return any(c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conditions)


def assert_succeeded_once(
    airflow: AirflowDeployment,
    deployed: Deployed,
    scenario: str,
    run_id: str,
    objects: Any = jobs_of,
) -> None:
    dag_id = f"deployed_{scenario}"
    state = airflow.wait_for_run(dag_id, run_id, timeout=420)
    task = airflow.tasks(dag_id, run_id)["work"]
    assert (state, task.state) == ("success", "success"), (
        task,
        airflow.task_log(dag_id, run_id, "work")[-5000:],
        airflow.component_logs()[-5000:],
    )
    assert task.try_number == 1, "a retry was spent"
    assert len(objects(deployed, scenario)) == 1, "the Job (Workflow) was created twice"
    assert f"{scenario}: done" in airflow.task_log(dag_id, run_id, "work")


def test_triggerer_killed_while_the_job_finishes(deployed: Deployed) -> None:
    """SIGKILL the triggerer; the Job finishes while no triggerer runs; a new triggerer takes
    the orphaned trigger over and fires at once from the Job's current state."""
    airflow = deployed.airflow
    run_id = start_scenario(deployed, "triggerer_killed")
    old_triggerer = airflow.wait_for_job("TriggererJob")
    airflow.kill("triggerer", signal.SIGKILL)
    wait_until(lambda: job_finished(deployed, "triggerer_killed"), 300, "the Job to finish")
    airflow.start("triggerer")
    airflow.wait_for_job("TriggererJob", newer_than=old_triggerer)
    assert_succeeded_once(airflow, deployed, "triggerer_killed", run_id)


def test_scheduler_killed_and_restarted_while_deferred(deployed: Deployed) -> None:
    airflow = deployed.airflow
    run_id = start_scenario(deployed, "scheduler_killed")
    old_scheduler = airflow.wait_for_job("SchedulerJob")
    airflow.kill("scheduler", signal.SIGKILL)
    airflow.start("scheduler")
    airflow.wait_for_job("SchedulerJob", newer_than=old_scheduler)
    assert_succeeded_once(airflow, deployed, "scheduler_killed", run_id)


def test_kubernetes_api_server_restarted_with_its_watch_history_lost(deployed: Deployed) -> None:
    """Every watch dropped, old resourceVersions answer 410 Gone, and connections are refused
    for a few seconds, while the trigger waits in the triggerer process."""
    run_id = start_scenario(deployed, "api_server_restarted")
    deployed.cluster.restart_api_server(outage_seconds=5)
    assert_succeeded_once(deployed.airflow, deployed, "api_server_restarted", run_id)


def test_token_rotated_while_deferred(deployed: Deployed) -> None:
    """The cluster's token is revoked and a new one written to the kubeconfig: the trigger gets
    401, reloads its credentials, and goes on waiting."""
    run_id = start_scenario(deployed, "token_rotated")
    deployed.cluster.expire_token()
    assert_succeeded_once(deployed.airflow, deployed, "token_rotated", run_id)


def test_credentials_revoked_for_good_fail_the_task_instead_of_hanging(deployed: Deployed) -> None:
    """The token is revoked and the kubeconfig keeps it: after reloading its credentials once,
    the trigger gets 401 again and the task fails, saying so, instead of waiting forever."""
    airflow = deployed.airflow
    run_id = start_scenario(deployed, "credentials_revoked", seconds=30000)
    kubeconfig = Path(deployed.kubeconfig)
    stale = kubeconfig.read_bytes()
    deployed.cluster.expire_token()
    kubeconfig.write_bytes(stale)
    try:
        state = airflow.wait_for_run("deployed_credentials_revoked", run_id, timeout=420)
        log = airflow.task_log("deployed_credentials_revoked", run_id, "work")
        assert state == "failed", log[-4000:]
        assert "401" in log and "credentials" in log.lower(), log[-4000:]
    finally:
        # The other scenarios' connection works again.
        deployed.cluster.expire_token()


def running_pod(deployed: Deployed, scenario: str) -> dict[str, Any]:
    """The scenario's pod once it runs on a node."""
    (job,) = jobs_of(deployed, scenario)
    name = job["metadata"]["name"]

    def running() -> dict[str, Any] | None:
        pods = deployed.cluster.list("pods", NAMESPACE, {JOB_NAME_LABEL: name})
        return next((p for p in pods if p["status"].get("phase") == "Running"), None)

    return wait_until(running, 300, f"a running pod of Job {name}")


def test_api_answers_503_while_the_resumed_task_reads_its_pods(deployed: Deployed) -> None:
    """The Job succeeds; the worker resuming the task gets 503 three times when it lists the
    Job's pods: it retries as the retry policy says and succeeds, on its first try."""
    run_id = start_scenario(deployed, "resume_503")
    deployed.cluster.fail_next(
        count=3, status=503, verb="list", resource="pods", label_selector=JOB_UID_SELECTOR
    )
    assert_succeeded_once(deployed.airflow, deployed, "resume_503", run_id)


def test_job_deleted_behind_the_tasks_back_fails_the_try_and_the_retry_runs_it_again(
    deployed: Deployed,
) -> None:
    airflow = deployed.airflow
    run_id = start_scenario(deployed, "job_deleted")
    (job,) = jobs_of(deployed, "job_deleted")
    deployed.cluster.delete("jobs", NAMESPACE, job["metadata"]["name"], propagation="Foreground")
    state = airflow.wait_for_run("deployed_job_deleted", run_id, timeout=420)
    task = airflow.tasks("deployed_job_deleted", run_id)["work"]
    log = airflow.task_log("deployed_job_deleted", run_id, "work")
    assert (state, task.state, task.try_number) == ("success", "success", 2), log[-5000:]
    assert "deleted" in log and job["metadata"]["name"] in log, log[-5000:]
    (second,) = jobs_of(deployed, "job_deleted")  # the deleted one is gone, one new Job
    assert second["metadata"]["labels"]["airflow-k8s-jobs.io/try-number"] == "2"


def test_pod_preempted_on_a_spot_node_is_replaced_without_a_retry(deployed: Deployed) -> None:
    run_id = start_scenario(deployed, "pod_preempted")
    pod = running_pod(deployed, "pod_preempted")
    deployed.cluster.preempt_pod(NAMESPACE, pod["metadata"]["name"])
    assert_succeeded_once(deployed.airflow, deployed, "pod_preempted", run_id)


def test_node_lost_under_the_pod_is_replaced_without_a_retry(deployed: Deployed) -> None:
    run_id = start_scenario(deployed, "node_lost")
    pod = running_pod(deployed, "node_lost")
    deployed.cluster.lose_node(pod["spec"]["nodeName"])
    assert_succeeded_once(deployed.airflow, deployed, "node_lost", run_id)


def task_process(deployed: Deployed) -> psutil.Process:
    """The task process talking to the cluster: the one client of the API server that is
    neither this test process nor the triggerer."""
    port = urlsplit(deployed.cluster.url).port

    def find() -> psutil.Process | None:
        for conn in psutil.net_connections(kind="tcp"):
            if not conn.raddr or conn.raddr.port != port or conn.pid in (None, os.getpid()):
                continue
            process = psutil.Process(conn.pid)
            if not any("triggerer" in part for part in process.cmdline()):
                return process
        return None

    return wait_until(find, 120, "the task process's connection to the cluster")


def test_worker_killed_between_create_and_defer_then_the_retry_waits_for_its_job(
    deployed: Deployed,
) -> None:
    """The API server stores the Job but holds its answer; the task process is SIGKILLed before
    it hears it (so before it defers). Airflow retries the task; the retry finds the Job of try 1
    still running and waits for it instead of running the work a second time."""
    airflow = deployed.airflow
    deployed.cluster.add_behaviour(
        {
            "match": {"image": "task-python:1.0", "args": "long-task.py worker_killed"},
            "seconds": RUN_SECONDS,
            "stdout": "worker_killed: done",
        }
    )
    deployed.cluster.hold_next(120, verb="create", resource="jobs")
    airflow.unpause("deployed_worker_killed")
    run_id = airflow.first_run("deployed_worker_killed")
    wait_until(lambda: jobs_of(deployed, "worker_killed"), 300, "the Job to be stored")
    task_process(deployed).kill()

    state = airflow.wait_for_run("deployed_worker_killed", run_id, timeout=420)
    task = airflow.tasks("deployed_worker_killed", run_id)["work"]
    log = airflow.task_log("deployed_worker_killed", run_id, "work")
    assert (state, task.state, task.try_number) == ("success", "success", 2), log[-5000:]
    (job,) = jobs_of(deployed, "worker_killed")  # the work ran once
    assert job["metadata"]["labels"]["airflow-k8s-jobs.io/try-number"] == "1"
    assert f"waits for Job {NAMESPACE}/{job['metadata']['name']}" in log, log[-5000:]
    assert "worker_killed: done" in log


def test_429_bursts_with_retry_after_while_deferred_are_waited_out_not_hammered(
    deployed: Deployed,
) -> None:
    """The trigger's open watch is cut, and its next requests for Jobs get 429 with
    ``Retry-After: 3`` four times in a row: each new request comes at least three seconds after
    the one before, then the trigger watches again and the task succeeds."""
    cluster = deployed.cluster
    run_id = start_scenario(deployed, "throttled_429")
    wait_for_the_trigger_to_watch(deployed)
    burst, retry_after = 4, 3
    before = cluster.requests(resource="jobs")
    cluster.fail_next(count=burst, status=429, retry_after=retry_after, resource="jobs")
    cluster.reset_connections(0)  # the open watch is cut; nothing else is refused
    seen: list[float] = []  # when each request for Jobs was first counted

    def burst_answered() -> bool:
        count = cluster.requests(resource="jobs") - before
        while len(seen) < count:
            seen.append(time.monotonic())
        return count > burst  # the four 429s and the request after them

    wait_until(burst_answered, 120, "the requests after the 429 burst", interval=0.1)
    gaps = [b - a for a, b in itertools.pairwise(seen[: burst + 1])]
    assert len(gaps) == burst and min(gaps) >= retry_after - 0.5, gaps
    assert_succeeded_once(deployed.airflow, deployed, "throttled_429", run_id)
    # The trigger said why it waited (its lines are in the task's log, or the triggerer's).
    logs = deployed.airflow.task_log("deployed_throttled_429", run_id, "work")
    logs += deployed.airflow.component_logs()
    assert f"(HTTP 429); retrying in {retry_after}" in logs, logs[-4000:]


def test_503_bursts_while_deferred_are_backed_off_and_waited_out(deployed: Deployed) -> None:
    """The trigger's open watch is cut, and its next five requests for Jobs get 503 (no
    Retry-After): it backs off between them, watches again, and the task succeeds once."""
    cluster = deployed.cluster
    run_id = start_scenario(deployed, "unavailable_503")
    wait_for_the_trigger_to_watch(deployed)
    burst = 5
    before = cluster.requests(resource="jobs")
    cluster.fail_next(count=burst, status=503, resource="jobs")
    cluster.reset_connections(0)
    wait_until(
        lambda: cluster.requests(resource="jobs") - before > burst,
        120,
        "the requests after the 503 burst",
    )
    assert_succeeded_once(deployed.airflow, deployed, "unavailable_503", run_id)
    logs = deployed.airflow.task_log("deployed_unavailable_503", run_id, "work")
    logs += deployed.airflow.component_logs()
    assert "(HTTP 503); retrying in" in logs, logs[-4000:]


def test_connections_reset_while_deferred_are_retried(deployed: Deployed) -> None:
    """The trigger's open watch is reset, and so is every connection it opens for eight seconds
    (a flapping load balancer): it backs off, watches again, and the task succeeds once."""
    cluster = deployed.cluster
    run_id = start_scenario(deployed, "connections_reset")
    wait_for_the_trigger_to_watch(deployed)
    resets = cluster.requests("reset", "connections")
    cluster.reset_connections(8)
    assert_succeeded_once(deployed.airflow, deployed, "connections_reset", run_id)
    assert cluster.requests("reset", "connections") > resets, "no request met a reset"


def test_workflow_waited_for_while_the_api_server_restarts_with_its_history_lost(
    deployed: Deployed,
) -> None:
    """As for a Job: every watch dropped, 410 for old resourceVersions, connections refused
    for a few seconds; the Workflow's trigger lists again and the task succeeds once."""
    run_id = start_scenario(deployed, "workflow_api_server_restarted")
    deployed.cluster.restart_api_server(outage_seconds=5)
    assert_succeeded_once(
        deployed.airflow, deployed, "workflow_api_server_restarted", run_id, workflows_of
    )


def test_workflow_deleted_behind_the_tasks_back_fails_the_task_once_saying_so(
    deployed: Deployed,
) -> None:
    airflow, cluster = deployed.airflow, deployed.cluster

    def creates() -> int:
        """Workflow creates that stored something (the operator's dry run first stores nothing)."""
        return int(
            cluster.requests("create", "workflows")
            - cluster.counters.dry_runs[("create", "workflows")]
        )

    before = creates()
    run_id = start_scenario(deployed, "workflow_deleted", seconds=30000)
    (workflow,) = workflows_of(deployed, "workflow_deleted")
    cluster.delete("workflows", NAMESPACE, workflow["metadata"]["name"])
    state = airflow.wait_for_run("deployed_workflow_deleted", run_id, timeout=420)
    task = airflow.tasks("deployed_workflow_deleted", run_id)["work"]
    log = airflow.task_log("deployed_workflow_deleted", run_id, "work")
    assert (state, task.state, task.try_number) == ("failed", "failed", 1), log[-5000:]
    assert "was deleted while the task waited for it" in log, log[-5000:]
    assert workflow["metadata"]["name"] in log, log[-5000:]
    assert workflows_of(deployed, "workflow_deleted") == []
    assert creates() - before == 1, "the Workflow was recreated"
