"""Job-level interpretation: outcomes, counts, deletion, suspension, status lines.

Fixtures are real-shaped API objects captured from the simulated cluster (see
``fixtures_status/capture.py``).
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_k8s_jobs.status import (
    JobState,
    Phase,
    interpret_job,
    job_outcome,
    server_now,
)

FIXTURES = Path(__file__).parent / "fixtures_status"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def interpret(name: str, **kwargs: Any) -> JobState:
    data = load(name)
    return interpret_job(data["job"], data["pods"], data["events"], **kwargs)


def _cond(kind: str, status: str = "True", reason: str | None = None, message: str = ""):
    cond = {"type": kind, "status": status, "message": message}
    if reason is not None:
        cond["reason"] = reason
    return cond


def _job(*conds: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "j", "namespace": "ns"}, "status": {"conditions": list(conds)}}


# --- job_outcome ------------------------------------------------------------------------------


def test_outcome_none_without_decisive_conditions():
    assert job_outcome({}) is None
    assert job_outcome(_job()) is None
    assert job_outcome(_job(_cond("Suspended", reason="JobSuspended"))) is None
    assert job_outcome(_job(_cond("Failed", "False", "BackoffLimitExceeded"))) is None
    assert job_outcome(_job(_cond("Complete", "False"))) is None


def test_outcome_complete_and_failed():
    assert job_outcome(_job(_cond("Complete", reason="CompletionsReached", message="Reached"))) == (
        "Complete",
        "CompletionsReached",
        "Reached",
    )
    failed = _job(_cond("Failed", reason="DeadlineExceeded", message="too long"))
    assert job_outcome(failed) == ("Failed", "DeadlineExceeded", "too long")


def test_outcome_complete_without_reason_from_older_clusters():
    assert job_outcome(_job(_cond("Complete"))) == ("Complete", "CompletionsReached", "")


def test_outcome_decided_by_targets_before_final_conditions():
    assert job_outcome(_job(_cond("FailureTarget", reason="PodFailurePolicy", message="m"))) == (
        "Failed",
        "PodFailurePolicy",
        "m",
    )
    assert job_outcome(_job(_cond("SuccessCriteriaMet", reason="SuccessPolicy"))) == (
        "Complete",
        "SuccessPolicy",
        "",
    )


def test_outcome_failure_wins_over_success_on_a_malformed_object():
    both = _job(_cond("Complete", reason="CompletionsReached"), _cond("Failed", reason="X"))
    assert job_outcome(both) == ("Failed", "X", "")
    targets = _job(_cond("SuccessCriteriaMet", reason="A"), _cond("FailureTarget", reason="B"))
    assert job_outcome(targets) == ("Failed", "B", "")


def test_outcome_message_is_one_line():
    job = _job(_cond("Failed", reason="PodFailurePolicy", message="line one\n  line two"))
    assert job_outcome(job) == ("Failed", "PodFailurePolicy", "line one line two")


def test_outcome_of_captured_jobs():
    assert job_outcome(load("success_complete")["job"]) == (
        "Complete",
        "CompletionsReached",
        "Reached expected number of succeeded pods",
    )
    assert job_outcome(load("backoff_limit_exceeded")["job"]) == (
        "Failed",
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    )
    assert job_outcome(load("success_running")["job"]) is None


# --- finished Jobs ---------------------------------------------------------------------------


def test_success():
    state = interpret("success_complete")
    assert state.phase is Phase.SUCCEEDED
    assert state.finished and state.pods_gone
    assert state.reason == "CompletionsReached"
    assert (state.succeeded, state.completions, state.failed) == (2, 2, 0)
    assert state.status_line == "succeeded: 2/2 completions"
    assert state.message == "Job batch/ok succeeded (CompletionsReached): 2/2 succeeded."
    assert state.problems == () and state.failed_pods == ()
    assert (state.name, state.namespace) == ("ok", "batch")


def test_fanout_success_after_scale_up():
    state = interpret("fanout_complete")
    assert state.phase is Phase.SUCCEEDED
    assert state.status_line == "succeeded: 10/10 completions"
    assert state.waiting_for_capacity == 0 and state.capacity_detail == ""


def test_backoff_limit_exceeded():
    data = load("backoff_limit_exceeded")
    state = interpret_job(data["job"], data["pods"], data["events"])
    assert state.phase is Phase.FAILED
    assert state.finished and state.pods_gone
    assert state.reason == "BackoffLimitExceeded"
    assert state.failed == 2
    assert "Job batch/crash failed (BackoffLimitExceeded)" in state.message
    assert "Job has reached the specified backoff limit" in state.message
    assert "backoffLimit (1)" in state.message
    assert "exited with code 2 (Error): bad row 17" in state.message
    assert state.status_line == "failed: BackoffLimitExceeded, 2 failed"
    # newest failure last
    finished = {
        p["metadata"]["name"]: p["status"]["containerStatuses"][0]["state"]["terminated"][
            "finishedAt"
        ]
        for p in data["pods"]
    }
    assert set(state.failed_pods) == set(finished)
    assert list(state.failed_pods) == sorted(finished, key=finished.__getitem__)
    assert state.message.endswith(
        f"pod {state.failed_pods[-1]} container main exited with code 2 (Error): bad row 17."
    )


def test_failure_target_is_decided_while_pods_terminate():
    state = interpret("failure_target_terminating")
    assert state.phase is Phase.FAILED
    assert state.finished is True
    assert state.pods_gone is False
    assert state.terminating == 1
    assert state.reason == "BackoffLimitExceeded"
    assert state.status_line == "failed: BackoffLimitExceeded, 2 failed, 1 terminating"


def test_success_criteria_met_is_decided_before_complete():
    data = load("success_complete")
    job = data["job"]
    job["status"]["conditions"] = [
        c for c in job["status"]["conditions"] if c["type"] == "SuccessCriteriaMet"
    ]
    job["status"]["terminating"] = 1
    state = interpret_job(job, data["pods"], data["events"])
    assert state.phase is Phase.SUCCEEDED
    assert state.finished and not state.pods_gone
    assert state.status_line == "succeeded: 2/2 completions, 1 terminating"


def test_deadline_exceeded():
    state = interpret("deadline_exceeded")
    assert state.phase is Phase.FAILED and state.reason == "DeadlineExceeded"
    assert "Job was active longer than specified deadline" in state.message
    assert "activeDeadlineSeconds (10s)" in state.message


def test_failed_indexes():
    state = interpret("indexed_failed_indexes")
    assert state.phase is Phase.FAILED and state.reason == "FailedIndexes"
    assert state.succeeded == 3 and state.completions == 4
    assert "Failed indexes: 2." in state.message
    assert "(index 2) container main exited with code 3 (Error): corrupt input" in state.message
    assert state.status_line == "failed: FailedIndexes, 3/4 succeeded, 1 failed"
    assert [f.index for f in state.failures] == [2]
    assert len(state.failed_pods) == 1 and "-2-" in state.failed_pods[0]


def test_max_failed_indexes_hint():
    data = load("indexed_failed_indexes")
    job = data["job"]
    job["spec"]["maxFailedIndexes"] = 0
    for cond in job["status"]["conditions"]:
        cond["reason"] = "MaxFailedIndexesExceeded"
        cond["message"] = "Job has exceeded the specified maximal number of failed indexes"
    state = interpret_job(job, data["pods"], data["events"])
    assert state.reason == "MaxFailedIndexesExceeded"
    assert "maxFailedIndexes (0)" in state.message and "failed indexes: 2" in state.message


def test_pod_failure_policy_failjob():
    state = interpret("pod_failure_policy_failjob")
    assert state.reason == "PodFailurePolicy"
    assert "failed with exit code 42 matching FailJob rule at index 0" in state.message
    assert state.failures[0].exit_code == 42


def test_oom_killed_is_explained():
    data = load("backoff_limit_exceeded")
    for pod in data["pods"]:
        term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        term.update(exitCode=137, reason="OOMKilled")
        term.pop("message", None)
    state = interpret_job(data["job"], data["pods"], data["events"])
    assert "exited with code 137 (OOMKilled)" in state.message
    assert "more memory than its limit" in state.message


def test_backoff_limit_defaults_to_six_in_the_message():
    data = load("backoff_limit_exceeded")
    del data["job"]["spec"]["backoffLimit"]
    state = interpret_job(data["job"], data["pods"], data["events"])
    assert "backoffLimit (6)" in state.message


# --- deleted Jobs ----------------------------------------------------------------------------


def test_deleted_job():
    data = load("backoff_running")
    state = interpret_job(None, data["pods"], data["events"])
    assert state.phase is Phase.FAILED
    assert state.finished
    assert state.reason == "JobDeleted"
    assert "Job batch/crash was deleted while the task was waiting" in state.message
    assert "does not record who deleted it" in state.message
    assert "clear the task" in state.message
    assert state.pods_gone is False  # a running pod is still there
    assert state.status_line == "deleted"


def test_deleted_job_without_pods_uses_the_given_name():
    state = interpret_job(None, [], [], name="etl", namespace="batch")
    assert state.reason == "JobDeleted" and state.pods_gone
    assert state.message.startswith("Job batch/etl was deleted")
    assert interpret_job(None, [], []).message.startswith("The Job was deleted")


def test_deleted_job_keeps_failed_pods_for_logs():
    data = load("backoff_limit_exceeded")
    state = interpret_job(None, data["pods"], data["events"])
    assert len(state.failed_pods) == 2 and state.pods_gone


def test_job_being_deleted_before_it_finished():
    data = load("success_running")
    data["job"]["metadata"]["deletionTimestamp"] = data["job"]["metadata"]["creationTimestamp"]
    state = interpret_job(data["job"], data["pods"], data["events"])
    assert state.phase is Phase.FAILED and state.reason == "JobDeleted"
    assert "is being deleted" in state.message


def test_finished_job_being_deleted_keeps_its_outcome():
    data = load("success_complete")
    data["job"]["metadata"]["deletionTimestamp"] = data["job"]["metadata"]["creationTimestamp"]
    state = interpret_job(data["job"], data["pods"], data["events"])
    assert state.phase is Phase.SUCCEEDED


# --- running, pending, suspended -------------------------------------------------------------


def test_running():
    state = interpret("success_running")
    assert state.phase is Phase.RUNNING and not state.finished
    assert (state.running, state.active, state.completions) == (2, 2, 2)
    assert state.status_line == "0/2 succeeded, 2 running"
    assert state.reason == "Running"
    assert not state.waiting_on_capacity


def test_single_pod_job_has_no_counter_while_running():
    assert interpret("backoff_running").status_line == "1 running"


def test_counts_come_from_the_job_when_pods_are_not_known():
    data = load("success_running")
    data["job"]["status"]["ready"] = 1
    state = interpret_job(data["job"], [], [])
    assert state.phase is Phase.RUNNING
    assert state.status_line == "0/2 succeeded, 1 running, 1 starting"


def test_no_pods_yet():
    data = load("success_running")
    job = data["job"]
    job["status"] = {}
    state = interpret_job(job, [], [])
    assert state.phase is Phase.PENDING and state.reason == "Pending"
    assert state.status_line == "0/2 succeeded, no pods yet"


def test_finished_pods_the_job_controller_has_not_counted_yet():
    """Between waves the real Job controller counts finished pods a moment after they end:
    the line must not say "no pods yet" while the first wave's pods are done."""
    data = load("success_running")
    job = data["job"]
    job["status"] = {"active": 0}
    pods = copy.deepcopy(data["pods"])
    for pod in pods:
        pod["status"]["phase"] = "Succeeded"
    state = interpret_job(job, pods, [])
    assert not state.finished
    assert state.status_line == f"0/2 succeeded, {len(pods)} finished pods not counted yet"
    job["status"] = {"succeeded": len(pods), "active": 0}
    assert interpret_job(job, pods, []).status_line == f"{len(pods)}/2 succeeded, no pods running"


def test_work_queue_job_counts_successes_without_completions():
    data = load("success_running")
    job = data["job"]
    del job["spec"]["completions"]
    job["status"]["succeeded"] = 3
    state = interpret_job(job, data["pods"], data["events"])
    assert state.completions is None
    assert state.status_line == "3 succeeded, 2 running"


def test_plain_suspended_job_is_queued():
    state = interpret("suspended")
    assert state.phase is Phase.QUEUED and not state.finished
    assert state.reason == "Suspended"
    assert "spec.suspend" in state.capacity_detail
    assert state.status_line.startswith("queued: the Job is suspended")
    assert state.waiting_on_capacity
    assert state.waiting_for_capacity == 0


def test_preempted_pod_is_reported_but_not_a_failure():
    state = interpret("preempted_failed")
    assert state.phase is Phase.RUNNING
    assert state.failed == 0
    assert state.status_line == "1 running"
    [failure] = state.failures
    assert failure.disruption == "PreemptionByScheduler"
    assert failure.exit_code == 143
    assert state.failed_pods == (failure.pod,)


def test_crash_loop_is_a_transient_problem():
    state = interpret("crash_loop_back_off")
    assert state.phase is Phase.RUNNING
    [problem] = state.problems
    assert problem.reason == "CrashLoopBackOff" and not problem.permanent
    assert "restarted 3 times, last exit code 1" in problem.message
    assert state.permanent_problem is None
    assert state.status_line == "1 running, crash loop on 1 pod"
    assert state.failed_pods and state.failures[0].restarts == 3


# --- the cluster clock -----------------------------------------------------------------------


def test_server_now_is_the_newest_cluster_timestamp():
    data = load("backoff_limit_exceeded")
    now = server_now(data["job"], data["pods"], data["events"])
    stamps = [e["lastTimestamp"] for e in data["events"]] + [
        c["lastTransitionTime"] for c in data["job"]["status"]["conditions"]
    ]
    newest = max(datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ") for s in stamps)
    assert now == newest.replace(tzinfo=timezone.utc)


def test_server_now_ignores_deletion_timestamps_in_the_future():
    pod = {
        "metadata": {
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "deletionTimestamp": "2026-01-01T01:00:00Z",
        }
    }
    assert server_now(None, [pod], []) == datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_server_now_reads_micro_times_series_and_managed_fields():
    event = {
        "eventTime": "2026-01-01T00:00:05.123456Z",
        "series": {"count": 2, "lastObservedTime": "2026-01-01T00:00:09.000001Z"},
    }
    assert server_now(None, [], [event]) == datetime(2026, 1, 1, 0, 0, 9, 1, tzinfo=timezone.utc)
    job = {"metadata": {"managedFields": [{"time": "2026-01-01T00:01:00Z"}]}}
    assert server_now(job, [], [event]) == datetime(2026, 1, 1, 0, 1, tzinfo=timezone.utc)


def test_server_now_is_none_without_timestamps():
    assert server_now(None, [], []) is None
    assert server_now({"metadata": {"creationTimestamp": "garbage"}}, [{}], [{}]) is None


def _shift_times(obj: Any, delta: timedelta) -> Any:
    """Every RFC 3339 timestamp in ``obj`` moved by ``delta``."""
    if isinstance(obj, dict):
        return {k: _shift_times(v, delta) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_shift_times(v, delta) for v in obj]
    if isinstance(obj, str) and len(obj) == 20 and obj[10] == "T" and obj.endswith("Z"):
        when = datetime.strptime(obj, "%Y-%m-%dT%H:%M:%SZ") + delta
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return obj


@pytest.mark.parametrize(
    "name",
    ["fanout_scale_up", "fanout_partly_done", "image_pull_backoff_persistent", "preempted_failed"],
)
def test_states_do_not_depend_on_the_local_clock(name):
    """A cluster whose clock is years off ours gives the same state."""
    data = load(name)
    state = interpret_job(data["job"], data["pods"], data["events"])
    skewed = _shift_times(copy.deepcopy(data), timedelta(days=-3650))
    other = interpret_job(skewed["job"], skewed["pods"], skewed["events"])
    assert other.status_line == state.status_line
    assert other.phase is state.phase
    assert [p.permanent for p in other.problems] == [p.permanent for p in state.problems]


def test_pods_of_another_job_with_the_same_name_are_ignored():
    data = load("success_running")
    stale = copy.deepcopy(data["pods"][0])
    stale["metadata"]["name"] = "ok-stale"
    stale["metadata"]["ownerReferences"][0]["uid"] = "uid-of-an-earlier-job"
    stale["status"]["phase"] = "Failed"
    state = interpret_job(data["job"], [*data["pods"], stale], data["events"])
    assert state.failed_pods == () and state.running == 2


class CountedEvents(list[dict[str, Any]]):
    """Events that count how often they are read through."""

    reads = 0

    def __iter__(self) -> Any:
        self.reads += 1
        return super().__iter__()


def test_events_are_read_a_fixed_number_of_times_however_many_pods() -> None:
    # A 1,500-pod fan-out has thousands of pods and events: matching them pod by pod over all
    # the events held the event loop for seconds on every change.
    data = load("image_pull_backoff_persistent")
    template = data["pods"][0]
    pods = []
    for i in range(60):
        pod = copy.deepcopy(template)
        pod["metadata"]["name"] = f"{template['metadata']['name']}-{i}"
        pod["metadata"]["uid"] = f"uid-{i}"
        pods.append(pod)
    events = CountedEvents(data["events"])
    state = interpret_job(data["job"], [*data["pods"], *pods], events)
    plain = interpret_job(data["job"], [*data["pods"], *pods], list(data["events"]))
    assert state == plain
    assert any(p.reason in ("ImagePullBackOff", "ErrImagePull") for p in state.problems)
    assert events.reads <= 3
