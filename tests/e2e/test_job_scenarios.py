"""KubeJobOperator scenarios run by real Airflow (``dag.test()``) against the simulated cluster.

Each test runs one DAG of ``dags/job_scenarios.py`` on Airflow 2.11 or 3.x (whichever this
interpreter has) and checks the outcome in Airflow (task states, try numbers, XCom), in the task
log and on the cluster. ``dag.test()`` writes the task log — the operator's and the trigger's
``self.log`` — to stdout on both versions, so the tests read it with ``capsys``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_k8s_jobs import KubeJobOperator
from airflow_k8s_jobs.manifests.names import TRY_NUMBER
from simulated_k8s_cluster import SimulatedCluster

from .conftest import load_dag

pytestmark = pytest.mark.e2e

SCENARIOS = Path(__file__).parent / "dags" / "job_scenarios.py"
JOB_NAME = "batch.kubernetes.io/job-name"
TASK_ID = "airflow-k8s-jobs.io/task-id"
DAG_ID = "airflow-k8s-jobs.io/dag-id"
JOB_UID_SELECTOR = "batch.kubernetes.io/controller-uid="
"""How the operator selects a Job's pods when it reads their logs (the uid follows)."""


@dataclass
class Run:
    dag_run: Any
    log: str
    """Everything ``dag.test()`` printed: the task and trigger logs among it."""

    @property
    def state(self) -> str:
        return str(self.dag_run.state)

    def ti(self, task_id: str) -> Any:
        return next(t for t in self.dag_run.get_task_instances() if t.task_id == task_id)


def run_dag(
    dag_id: str, capsys: pytest.CaptureFixture[str], logical_date: datetime | None = None
) -> Run:
    dag = load_dag(str(SCENARIOS), dag_id)
    capsys.readouterr()
    kwargs: dict[str, Any] = {}
    if logical_date is not None:
        # Airflow 2 names the run after execution_date, Airflow 3 after run_after.
        if "logical_date" in dag.test.__code__.co_varnames:
            kwargs = {"logical_date": logical_date, "run_after": logical_date}
        else:
            kwargs = {"execution_date": logical_date}
    dag_run = dag.test(**kwargs)
    out = capsys.readouterr()
    return Run(dag_run, out.out + out.err)


def jobs_of(cluster: SimulatedCluster, dag_id: str) -> list[dict[str, Any]]:
    return [
        j
        for j in cluster.list("jobs", "batch")
        if (j["metadata"].get("labels") or {}).get(DAG_ID) == dag_id
    ]


def pods_of(cluster: SimulatedCluster, job: dict[str, Any]) -> list[dict[str, Any]]:
    return cluster.list("pods", "batch", {JOB_NAME: job["metadata"]["name"]})


# --- success ------------------------------------------------------------------------------------


def test_indexed_fanout_logs_every_pod_and_returns_termination_messages(
    e2e_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    e2e_cluster.add_behaviour(
        {
            "match": {"image": "scn/fanout:1"},
            "seconds": 5,
            "stdout": ["start $(POD_NAME) index $(JOB_COMPLETION_INDEX)", "end $(POD_NAME)"],
            "terminationMessage": "result-$(JOB_COMPLETION_INDEX)",
        }
    )
    e2e_cluster.add_behaviour(  # index 2's first pod fails; the Job retries it (backoff)
        {
            "match": {"image": "scn/fanout:1", "env": {"JOB_COMPLETION_INDEX": "2"}},
            "seconds": 2,
            "exitCode": 1,
            "stdout": "index 2 first attempt from $(POD_NAME) failing",
            "times": 1,
        }
    )
    run = run_dag("scn_fanout", capsys)

    assert run.state == "success", run.log[-3000:]
    (job,) = jobs_of(e2e_cluster, "scn_fanout")
    assert job["status"]["succeeded"] == 6 and job["status"]["failed"] == 1
    pods = pods_of(e2e_cluster, job)
    assert len(pods) == 7  # 6 completions in 3 waves of 2, plus the retried index 2
    for pod in pods:
        name = pod["metadata"]["name"]
        index = pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        prefix = f"{name}[{index}] | "
        if pod["status"]["phase"] == "Failed":
            assert f"{prefix}index 2 first attempt from {name} failing" in run.log
        else:
            assert f"{prefix}start {name} index {index}" in run.log
            assert f"{prefix}end {name}" in run.log
    # XCom: the termination messages of the succeeded pods, ordered by completion index.
    assert run.ti("fanout").xcom_pull(task_ids="fanout") == [f"result-{i}" for i in range(6)]
    assert run.ti("fanout").try_number == 1


# --- failure ------------------------------------------------------------------------------------


def test_failure_names_reason_pods_and_last_log_lines(
    e2e_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    e2e_cluster.add_behaviour(
        {
            "match": {"image": "scn/fail:1"},
            "seconds": 2,
            "exitCode": 3,
            "stdout": [f"line {i:02d} of $(POD_NAME)" for i in range(1, 31)],
        }
    )
    run = run_dag("scn_failure", capsys)

    assert run.state == "failed"
    assert str(run.ti("fail").state) == "failed"
    (job,) = jobs_of(e2e_cluster, "scn_failure")
    pods = pods_of(e2e_cluster, job)
    assert len(pods) == 2  # backoff_limit=1: two failed pods
    error = _error_text(run.log)
    assert "JobFailedError" in error
    assert "BackoffLimitExceeded" in error
    for pod in pods:
        name = pod["metadata"]["name"]
        assert f"- pod {name}: container main exited with code 3 (Error)" in error
        assert f"    | line 30 of {name}" in error
        assert f"    | line 11 of {name}" in error
        assert f"| line 10 of {name}" not in error  # only the last 20 lines
        assert f"{name} | line 01 of {name}" in run.log  # the whole log is in the task log


def _error_text(log: str) -> str:
    """The task failure's exception text as the task log shows it."""
    found = re.search(r"JobFailedError: .*?(?=\n\S*\d{4}-\d\d-\d\d[ T]\d\d:\d\d|\Z)", log, re.S)
    assert found, f"no JobFailedError in the task log:\n{log[-3000:]}"
    return found.group(0)


def test_preempted_pod_is_replaced_without_an_airflow_retry(
    e2e_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    e2e_cluster.add_behaviour({"match": {"image": "scn/spot:1"}, "seconds": 3, "stdout": "ok"})
    e2e_cluster.add_behaviour(  # the first pod only (times defaults to 1 for preemption)
        {"match": {"image": "scn/spot:1"}, "seconds": 60, "preemptAfterSeconds": 2}
    )
    run = run_dag("scn_preempted", capsys)

    assert run.state == "success", run.log[-3000:]
    ti = run.ti("spot")
    assert ti.try_number == 1
    (job,) = jobs_of(e2e_cluster, "scn_preempted")
    assert job["spec"]["backoffLimit"] == 0
    # The DisruptionTarget rule ignores the preempted pod: not counted against backoffLimit.
    assert not job["status"].get("failed")
    assert job["status"]["succeeded"] == 1
    # The scheduler deleted the preempted pod; the Job created a replacement that succeeded.
    created = e2e_cluster.events("batch", job["metadata"]["name"], "SuccessfulCreate")
    assert len(created) == 2
    preempted = [
        e
        for e in e2e_cluster.events("batch", reason="Preempted")
        if e["involvedObject"]["name"].startswith(job["metadata"]["name"] + "-")
    ]
    assert len(preempted) == 1
    (pod,) = pods_of(e2e_cluster, job)
    assert pod["status"]["phase"] == "Succeeded"
    assert pod["metadata"]["name"] != preempted[0]["involvedObject"]["name"]
    assert len(jobs_of(e2e_cluster, "scn_preempted")) == 1


# --- capacity -----------------------------------------------------------------------------------


def test_waits_through_a_scale_up_then_succeeds(
    e2e_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    e2e_cluster.add_behaviour({"match": {"image": "scn/gpu:1"}, "seconds": 5, "stdout": "trained"})
    run = run_dag("scn_scale_up", capsys)

    assert run.state == "success", run.log[-3000:]
    (job,) = jobs_of(e2e_cluster, "scn_scale_up")
    (pod,) = pods_of(e2e_cluster, job)
    assert e2e_cluster.events("batch", pod["metadata"]["name"], "TriggeredScaleUp")
    assert re.search(r"1 waiting for capacity: scale-up triggered", run.log), run.log[-3000:]
    assert f"{pod['metadata']['name']} | trained" in run.log


def test_fails_after_capacity_timeout_with_the_autoscalers_reason(
    e2e_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_dag("scn_no_capacity", capsys)

    assert run.state == "failed"
    # The task gave up on the Job: deleted with its pending pod, whose Events outlive it.
    name = run.ti("huge").xcom_pull(task_ids="huge", key="job_name")
    _assert_not_found(e2e_cluster, name)
    assert jobs_of(e2e_cluster, "scn_no_capacity") == []
    (pod_name,) = _created_pods(e2e_cluster, name)
    assert e2e_cluster.get("pods", "batch", pod_name) is None
    (event,) = e2e_cluster.events("batch", pod_name, "NotTriggerScaleUp")[-1:]
    error = _error_text(run.log)
    assert "CapacityTimeout" in error
    assert "waited 3s for capacity" in error
    assert "pod didn't trigger scale-up" in event["message"]
    autoscaler_reason = event["message"].split(":", 1)[1].strip()
    assert autoscaler_reason in error, error
    gave_up = f"Deleted Job batch/{name} on "
    assert gave_up in error and "so that it does not wait for capacity for ever." in error, error
    assert e2e_cluster.requests(verb="delete", resource="jobs") == 1


def test_an_unknown_node_pool_deletes_the_job_after_capacity_timeout(
    e2e_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_dag("scn_unknown_pool", capsys)

    assert run.state == "failed"
    name = run.ti("nowhere").xcom_pull(task_ids="nowhere", key="job_name")
    _assert_not_found(e2e_cluster, name)
    error = _error_text(run.log)
    assert "CapacityTimeout" in error and "no node pool can fit the pod" in error
    assert f"Deleted Job batch/{name} on " in error
    assert "so that it does not wait for capacity for ever." in error


def test_delete_on_give_up_false_keeps_the_pending_job(
    e2e_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_dag("scn_no_capacity_kept", capsys)

    assert run.state == "failed"
    (job,) = jobs_of(e2e_cluster, "scn_no_capacity_kept")
    (pod,) = pods_of(e2e_cluster, job)
    assert pod["status"]["phase"] == "Pending"
    error = _error_text(run.log)
    assert "CapacityTimeout" in error and "Deleted Job" not in error
    assert e2e_cluster.requests(verb="delete", resource="jobs") == 0


def _created_pods(cluster: SimulatedCluster, job_name: str) -> list[str]:
    """The pods the Job controller created for ``job_name``, read from its Events."""
    return [
        e["message"].removeprefix("Created pod: ")
        for e in cluster.events("batch", job_name, "SuccessfulCreate")
    ]


def _assert_not_found(cluster: SimulatedCluster, job_name: str) -> None:
    """GET of the Job through a real client answers 404."""
    import kubernetes

    api = cluster.sync_api_client()
    try:
        with pytest.raises(kubernetes.client.ApiException) as raised:
            kubernetes.client.BatchV1Api(api).read_namespaced_job(job_name, "batch")
    finally:
        api.close()
    assert raised.value.status == 404


def test_bad_image_fails_fast(
    e2e_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_dag("scn_bad_image", capsys)

    assert run.state == "failed"
    found = re.search(r"FatalInvalidInputError: .*?(?=\n\S*\d{4}-\d\d-\d\d[ T]|\Z)", run.log, re.S)
    assert found, run.log[-3000:]
    error = found.group(0)
    assert "InvalidImageName" in error
    assert "Registry.example.com/Team/App:1" in error and "must be lower case" in error
    # Refused before creating anything: the kubelet would have refused the reference.
    assert jobs_of(e2e_cluster, "scn_bad_image") == []
    assert e2e_cluster.writes("jobs") == 0


# --- retries and re-attach ----------------------------------------------------------------------


def test_each_try_gets_its_own_job(
    e2e_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    e2e_cluster.add_behaviour({"match": {"image": "scn/flaky:1"}, "seconds": 2, "stdout": "ok"})
    e2e_cluster.add_behaviour(
        {
            "match": {"image": "scn/flaky:1", "labels": {TRY_NUMBER: "1"}},
            "seconds": 2,
            "exitCode": 1,
            "stdout": "flaky failure",
        }
    )
    run = run_dag("scn_retry", capsys)

    assert run.state == "success", run.log[-3000:]
    assert run.ti("flaky").try_number == 2
    jobs = sorted(
        jobs_of(e2e_cluster, "scn_retry"), key=lambda j: j["metadata"]["labels"][TRY_NUMBER]
    )
    assert [j["metadata"]["labels"][TRY_NUMBER] for j in jobs] == ["1", "2"]
    assert len({j["metadata"]["name"] for j in jobs}) == 2
    assert jobs[0]["status"].get("failed") == 1 and not jobs[0]["status"].get("succeeded")
    assert jobs[1]["status"].get("succeeded") == 1


def test_a_retry_takes_over_the_job_whose_result_the_first_try_lost(
    e2e_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    e2e_cluster.add_behaviour({"match": {"image": "scn/lost:1"}, "seconds": 3, "stdout": "done"})
    # Every attempt of try 1 to list its Job's pods gets 503: the try fails, its Job succeeded.
    e2e_cluster.fail_next(
        count=6, status=503, verb="list", resource="pods", label_selector=JOB_UID_SELECTOR
    )
    run = run_dag("scn_lost_result", capsys)

    assert run.state == "success", run.log[-3000:]
    assert run.ti("lost").try_number == 2
    (job,) = jobs_of(e2e_cluster, "scn_lost_result")  # the work ran once
    assert job["metadata"]["labels"][TRY_NUMBER] == "1"
    assert job["status"].get("succeeded") == 1
    assert f"Try 2 waits for Job batch/{job['metadata']['name']}" in run.log
    assert "of try 1, which succeeded" in run.log
    assert run.ti("lost").xcom_pull(task_ids="lost", key="job_name") == job["metadata"]["name"]


def test_reattaches_to_the_job_a_crashed_worker_created(
    e2e_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    import kubernetes

    e2e_cluster.add_behaviour({"match": {"image": "scn/simple:1"}, "seconds": 3, "stdout": "hi"})
    logical_date = datetime(2026, 11, 3, 4, 5, 6, tzinfo=timezone.utc)
    run_id = f"manual__{logical_date.isoformat()}"
    # What the first worker did before dying: build the manifest of try 1 and create it.
    dag = load_dag(str(SCENARIOS), "scn_simple")
    operator: KubeJobOperator = dag.get_task("simple")
    ti = SimpleNamespace(
        dag_id="scn_simple", task_id="simple", run_id=run_id, map_index=-1, try_number=1
    )
    manifest, namespace = operator.build_manifest({"ti": ti})  # type: ignore[typeddict-item]
    api = e2e_cluster.sync_api_client()
    try:
        created = kubernetes.client.BatchV1Api(api).create_namespaced_job(namespace, manifest)
    finally:
        api.close()
    e2e_cluster.reset_counters()

    run = run_dag("scn_simple", capsys, logical_date=logical_date)

    assert run.dag_run.run_id == run_id
    assert run.state == "success", run.log[-3000:]
    (job,) = jobs_of(e2e_cluster, "scn_simple")
    assert job["metadata"]["uid"] == created.metadata.uid
    assert "Re-attached to Job batch/" in run.log
    # The dry run, then one create (409 AlreadyExists), then one GET to check the labels.
    assert e2e_cluster.requests(verb="create", resource="jobs") == 2
    assert e2e_cluster.requests(verb="get", resource="jobs") == 1
    assert run.ti("simple").xcom_pull(task_ids="simple", key="job_name") == (created.metadata.name)


def test_a_task_airflow_fails_while_deferred_deletes_its_running_job(
    e2e_cluster: SimulatedCluster,
) -> None:
    """Airflow's backstop timeout (or a failed trigger) resumes the task only to fail it."""
    import kubernetes

    e2e_cluster.add_behaviour({"match": {"image": "scn/simple:1"}, "seconds": 100_000})
    dag = load_dag(str(SCENARIOS), "scn_simple")
    operator: KubeJobOperator = dag.get_task("simple")
    ti = SimpleNamespace(
        dag_id="scn_simple", task_id="simple", run_id="manual__backstop", map_index=-1, try_number=1
    )
    context: Any = {"ti": ti}
    manifest, namespace = operator.build_manifest(context)
    api = e2e_cluster.sync_api_client()
    try:
        created = kubernetes.client.BatchV1Api(api).create_namespaced_job(namespace, manifest)
    finally:
        api.close()
    name = created.metadata.name
    e2e_cluster.wait_for(
        lambda: (e2e_cluster.get("jobs", "batch", name) or {}).get("status", {}).get("active"),
        message="the Job's pod to start",
    )

    with pytest.raises(Exception, match="timeout"):
        operator.resume_execution("__fail__", {"error": "Trigger/execution timeout"}, context)

    _assert_not_found(e2e_cluster, name)
    assert e2e_cluster.requests(verb="delete", resource="jobs") == 1
    # Nothing runs any more: failing again deletes nothing.
    with pytest.raises(Exception, match="timeout"):
        operator.resume_execution("__fail__", {"error": "Trigger/execution timeout"}, context)
    assert e2e_cluster.requests(verb="delete", resource="jobs") == 1


# --- bad input ----------------------------------------------------------------------------------

BAD_INPUT = {
    "malformed_yaml": (
        "scn_bad_yaml",
        ["job_scenarios_malformed.yaml", "malformed YAML", "line 11"],
    ),
    "not_a_job": ("scn_not_a_job", ["Pod", "Job"]),
    "missing_image": ("scn_missing_image", ["image"]),
    "namespace_not_allowed": ("scn_namespace_not_allowed", ["'team-b'", "allowed_namespaces"]),
    "invalid_label": ("scn_invalid_label", ["team name!"]),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_fails_before_anything_is_created(
    case: str,
    e2e_cluster: SimulatedCluster,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dag_id, words = BAD_INPUT[case]
    restricted = json.loads(_env("AIRFLOW_CONN_GKE_BATCH"))
    restricted["extra"]["allowed_namespaces"] = ["batch"]
    monkeypatch.setenv("AIRFLOW_CONN_GKE_BATCH_RESTRICTED", json.dumps(restricted))

    run = run_dag(dag_id, capsys)

    assert run.state == "failed"
    found = re.search(
        r"InvalidInputError: .*?(?=\n\S*\d{4}-\d\d-\d\d[ T]\d\d:\d\d|\Z)", run.log, re.S
    )
    assert found, run.log[-3000:]
    message = found.group(0)
    for word in words:
        assert word in message, message
    assert e2e_cluster.requests(verb="create", resource="jobs") == 0
    assert e2e_cluster.list("jobs", "batch") == []


def _env(name: str) -> str:
    import os

    return os.environ[name]
