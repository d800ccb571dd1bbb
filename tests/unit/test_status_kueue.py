"""Suspended Jobs and Kueue Workloads: queued for quota, inadmissible, preempted, admitted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_k8s_jobs.status import JobState, Phase, interpret_job

FIXTURES = Path(__file__).parent / "fixtures_status"
WORKLOADS = json.loads((FIXTURES / "kueue_workloads.json").read_text())


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def queued(workload: str | None, events: bool = True) -> JobState:
    data = load("kueue_suspended")
    return interpret_job(
        data["job"],
        data["pods"],
        data["events"] if events else [],
        WORKLOADS[workload] if workload else None,
    )


def test_workloads_are_real_shaped():
    for key, workload in WORKLOADS.items():
        if key == "note":
            continue
        assert workload["apiVersion"] == "kueue.x-k8s.io/v1beta1"
        assert workload["kind"] == "Workload"
        assert workload["metadata"]["ownerReferences"][0]["kind"] == "Job"
        for cond in workload["status"]["conditions"]:
            assert set(cond) >= {"type", "status", "reason", "message", "lastTransitionTime"}


def test_created_workload_event_before_the_workload_is_seen():
    state = queued(None)
    assert state.phase is Phase.QUEUED and not state.finished
    assert state.reason == "Queued"
    assert state.capacity_detail == (
        "Kueue: Workload batch/job-train-3f1c2 created in LocalQueue user-queue, not admitted"
    )
    assert state.waiting_on_capacity


def test_queue_label_without_workload_nor_event():
    state = queued(None, events=False)
    assert state.capacity_detail == "Kueue: waiting for a Workload in LocalQueue user-queue"


def test_pending_for_quota():
    state = queued("pending")
    assert state.phase is Phase.QUEUED
    assert state.reason == "Pending"
    assert state.capacity_detail == (
        "Kueue: waiting for quota in LocalQueue user-queue: couldn't assign flavors to pod set "
        "main: insufficient unused quota for cpu in flavor default-flavor, 3 more needed"
    )
    assert not state.hopeless and state.problems == ()
    assert state.status_line == f"queued: {state.capacity_detail}"
    assert state.message == f"Job batch/train is queued: {state.capacity_detail}."


def test_request_over_the_maximum_capacity_is_hopeless():
    state = queued("over_maximum")
    assert state.phase is Phase.QUEUED
    assert state.hopeless
    assert "request > maximum capacity (24 > 16)" in state.capacity_detail
    assert state.permanent_problem is None


def test_missing_local_queue_fails_now():
    state = queued("missing_local_queue")
    assert state.phase is Phase.QUEUED and not state.finished
    problem = state.permanent_problem
    assert problem is not None
    assert problem.reason == "Inadmissible" and problem.pod == "" and problem.container is None
    assert "LocalQueue no-such-queue doesn't exist" in problem.message
    assert "Create the LocalQueue" in problem.message
    assert "kueue.x-k8s.io/queue-name" in problem.message
    assert (
        problem.since
        == WORKLOADS["missing_local_queue"]["status"]["conditions"][0]["lastTransitionTime"]
    )
    assert state.reason == "Inadmissible" and state.message == problem.message
    assert state.status_line == "queued: Kueue: LocalQueue no-such-queue doesn't exist"


def test_inactive_cluster_queue_waits_but_is_hopeless():
    state = queued("inactive_cluster_queue")
    assert state.permanent_problem is None
    assert state.hopeless
    assert state.reason == "Inadmissible"
    assert state.capacity_detail == "Kueue: inadmissible: ClusterQueue team-a is inactive"


def test_quota_reserved_waiting_for_admission_checks():
    state = queued("admission_checks")
    assert state.reason == "QuotaReserved"
    assert state.capacity_detail == (
        "Kueue: quota reserved in ClusterQueue team-a, waiting for admission checks: "
        "dws-prov (Pending)"
    )


def test_admitted_but_not_yet_resumed():
    state = queued("admitted")
    assert state.phase is Phase.QUEUED and state.reason == "Admitted"
    assert state.capacity_detail == "Kueue: admitted in ClusterQueue team-a, starting"


def test_preempted_workload_is_queued_again():
    state = queued("preempted")
    assert state.phase is Phase.QUEUED
    assert state.reason == "Preempted"
    assert state.capacity_detail.startswith(
        "Kueue: evicted (Preempted: Preempted to accommodate a higher priority Workload); "
        "waiting for quota again in LocalQueue user-queue: couldn't assign flavors"
    )
    assert not state.hopeless


def test_evicted_without_a_new_quota_verdict():
    workload = json.loads(json.dumps(WORKLOADS["preempted"]))
    workload["status"]["conditions"] = [
        c for c in workload["status"]["conditions"] if c["type"] != "QuotaReserved"
    ]
    data = load("kueue_suspended")
    state = interpret_job(data["job"], [], [], workload)
    assert state.reason == "Preempted"
    assert state.capacity_detail.endswith("waiting to be admitted again in LocalQueue user-queue")


def test_deactivated_workload_is_hopeless():
    state = queued("deactivated")
    assert state.reason == "WorkloadDeactivated"
    assert state.hopeless and state.permanent_problem is None
    assert "deactivated (spec.active: false): The workload is deactivated" in (
        state.capacity_detail
    )


def test_unattempted_workload():
    state = queued("unattempted")
    assert state.capacity_detail == (
        "Kueue: waiting in LocalQueue user-queue for an admission attempt"
    )


@pytest.mark.parametrize("workload", ["pending", "missing_local_queue", "admitted"])
def test_workload_does_not_matter_once_the_job_runs(workload):
    data = load("success_running")
    state = interpret_job(data["job"], data["pods"], data["events"], WORKLOADS[workload])
    assert state.phase is Phase.RUNNING and state.problems == ()


def test_finished_job_wins_over_its_workload():
    data = load("success_complete")
    data["job"]["spec"]["suspend"] = True
    state = interpret_job(data["job"], data["pods"], data["events"], WORKLOADS["pending"])
    assert state.phase is Phase.SUCCEEDED


def test_queued_job_keeps_its_progress_after_preemption():
    data = load("kueue_suspended")
    data["job"]["spec"]["completions"] = 4
    data["job"]["status"]["succeeded"] = 2
    state = interpret_job(data["job"], [], data["events"], WORKLOADS["preempted"])
    assert state.status_line.startswith("queued: Kueue: evicted")
    assert state.status_line.endswith(", 2/4 succeeded")
