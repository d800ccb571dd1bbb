"""Pod problems: what fails now (bad images, missing config after a grace), what is retried."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_k8s_jobs.status import Phase, interpret_job, server_now
from airflow_k8s_jobs.status._objects import parse_time

FIXTURES = Path(__file__).parent / "fixtures_status"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def first_event(data: dict[str, Any], reason: str, starts: str = "") -> str:
    return min(
        e["firstTimestamp"]
        for e in data["events"]
        if e["reason"] == reason and e["message"].startswith(starts)
    )


def test_invalid_image_name_fails_now():
    data = load("invalid_image_name")
    state = interpret_job(data["job"], data["pods"], data["events"])
    assert state.phase is Phase.PENDING and not state.finished
    problem = state.permanent_problem
    assert problem is not None
    assert problem.reason == "InvalidImageName" and problem.permanent
    assert problem.pod == data["pods"][0]["metadata"]["name"] and problem.container == "main"
    assert "Registry.example/UPPER:tag" in problem.message
    assert "correct the image name" in problem.message
    assert state.reason == "InvalidImageName" and state.message == problem.message
    assert state.status_line == "1 starting, invalid image name on 1 pod"
    assert problem.since == first_event(data, "InspectFailed")


def test_err_image_never_pull_fails_now():
    data = load("err_image_never_pull")
    state = interpret_job(data["job"], data["pods"], data["events"])
    problem = state.permanent_problem
    assert problem is not None and problem.reason == "ErrImageNeverPull"
    assert 'Container image "local/app:dev" is not present with pull policy of Never' in (
        problem.message
    )
    assert "imagePullPolicy IfNotPresent or Always" in problem.message


@pytest.mark.parametrize("name", ["image_pull_early", "image_pull_backoff_early"])
def test_image_pull_failure_is_transient_at_first(name):
    data = load(name)
    state = interpret_job(data["job"], data["pods"], data["events"])
    [problem] = state.problems
    assert problem.reason in ("ErrImagePull", "ImagePullBackOff")
    assert not problem.permanent and state.permanent_problem is None
    assert state.phase is Phase.PENDING
    assert state.status_line == "1 starting, image pull failing on 1 pod"
    # the registry's answer, not the kubelet's "Back-off pulling image"
    assert 'Failed to pull image "private.example/app:1.0": rpc error: code = NotFound' in (
        problem.message
    )
    assert problem.since == first_event(data, "Failed", "Failed to pull image")
    assert problem.message in state.message


def test_image_pull_failure_becomes_permanent_after_the_grace():
    data = load("image_pull_backoff_persistent")
    state = interpret_job(data["job"], data["pods"], data["events"])
    problem = state.permanent_problem
    assert problem is not None and problem.reason == "ImagePullBackOff"
    lasted = server_now(data["job"], data["pods"], data["events"]) - parse_time(problem.since)  # type: ignore[operator]
    assert lasted.total_seconds() >= 300
    assert "for 7m" in problem.message
    assert "Check that the image and tag exist" in problem.message
    assert state.reason == "ImagePullBackOff" and state.message == problem.message
    # same status line as while it was transient: the trigger logs on change only
    assert state.status_line == "1 starting, image pull failing on 1 pod"


def test_image_pull_grace_is_configurable():
    persistent = load("image_pull_backoff_persistent")
    state = interpret_job(
        persistent["job"], persistent["pods"], persistent["events"], image_pull_grace_seconds=3600
    )
    assert state.permanent_problem is None
    early = load("image_pull_backoff_early")
    state = interpret_job(early["job"], early["pods"], early["events"], image_pull_grace_seconds=10)
    assert state.permanent_problem is not None


def test_image_pull_grace_is_measured_with_the_given_cluster_time():
    data = load("image_pull_early")
    since = parse_time(first_event(data, "Failed", "Failed to pull image"))
    assert since is not None
    for seconds, permanent in ((299, False), (300, True)):
        state = interpret_job(
            data["job"], data["pods"], data["events"], now=since + timedelta(seconds=seconds)
        )
        assert state.problems[0].permanent is permanent


def test_image_pull_without_events_dates_from_the_pod_start():
    data = load("image_pull_backoff_persistent")
    start = parse_time(data["pods"][0]["status"]["startTime"])
    assert start is not None
    state = interpret_job(data["job"], data["pods"], [], now=start + timedelta(minutes=6))
    assert state.permanent_problem is not None
    assert state.problems[0].since == data["pods"][0]["status"]["startTime"]
    # without events nor a clock, nothing in the snapshot is newer than the pod's start
    assert interpret_job(data["job"], data["pods"], []).permanent_problem is None


def test_pull_events_of_another_container_are_ignored():
    data = load("image_pull_backoff_persistent")
    for event in data["events"]:
        event["involvedObject"]["fieldPath"] = "spec.containers{sidecar}"
    start = data["pods"][0]["status"]["startTime"]
    state = interpret_job(data["job"], data["pods"], data["events"])
    assert state.problems[0].since == start  # fell back to the pod's start


def test_image_pull_of_an_init_container():
    data = load("image_pull_backoff_persistent")
    pod = data["pods"][0]
    status = pod["status"]
    init = copy.deepcopy(status["containerStatuses"][0])
    init["name"] = "fetch"
    status["initContainerStatuses"] = [init]
    status["containerStatuses"][0]["state"] = {"waiting": {"reason": "PodInitializing"}}
    for event in data["events"]:
        if event["involvedObject"]["kind"] == "Pod":
            event["involvedObject"]["fieldPath"] = "spec.initContainers{fetch}"
    state = interpret_job(data["job"], data["pods"], data["events"])
    problem = state.permanent_problem
    assert problem is not None and problem.container == "fetch"


def test_create_container_config_error_fails_after_the_grace():
    data = load("create_container_config_error")
    state = interpret_job(data["job"], data["pods"], data["events"])
    problem = state.permanent_problem
    assert problem is not None and problem.reason == "CreateContainerConfigError"
    assert 'secret "db-credentials" not found' in problem.message
    assert "create it in namespace batch" in problem.message
    assert problem.since == first_event(data, "Failed", "Error: secret")
    assert state.status_line == "1 starting, container config error on 1 pod"


def test_create_container_config_error_is_transient_at_first():
    data = load("create_container_config_error")
    since = parse_time(first_event(data, "Failed", "Error: secret"))
    assert since is not None
    state = interpret_job(
        data["job"], data["pods"], data["events"], now=since + timedelta(seconds=30)
    )
    [problem] = state.problems
    assert not problem.permanent
    assert "for 30s" in problem.message and "create it in" not in problem.message


@pytest.mark.parametrize(
    "reason", ["CreateContainerError", "RunContainerError", "PostStartHookError"]
)
def test_other_start_errors_are_transient(reason):
    data = load("invalid_image_name")
    data["pods"][0]["status"]["containerStatuses"][0]["state"] = {
        "waiting": {"reason": reason, "message": "something broke"}
    }
    state = interpret_job(data["job"], data["pods"], data["events"])
    [problem] = state.problems
    assert problem.reason == reason and not problem.permanent
    assert "something broke" in problem.message


@pytest.mark.parametrize("reason", ["ContainerCreating", "PodInitializing"])
def test_normal_start_is_not_a_problem(reason):
    data = load("invalid_image_name")
    data["pods"][0]["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": reason}}
    state = interpret_job(data["job"], data["pods"], data["events"])
    assert state.problems == ()
    assert state.phase is Phase.PENDING and state.reason == reason
    assert state.status_line == "1 starting"


def test_permanent_problem_does_not_hide_a_decided_outcome():
    data = load("invalid_image_name")
    data["job"]["status"]["conditions"] = [
        {
            "type": "FailureTarget",
            "status": "True",
            "reason": "DeadlineExceeded",
            "message": "Job was active longer than specified deadline",
        }
    ]
    state = interpret_job(data["job"], data["pods"], data["events"])
    assert state.phase is Phase.FAILED and state.reason == "DeadlineExceeded"
    assert state.permanent_problem is not None  # still listed, for the error message
