"""What a finished wait means for the task: the outcome of a Job's or a Workflow's wait, the pods
whose logs a failure needs, how a Workflow's pods are named in the task log, and its XCom value.

Jobs and pods are the captured objects of ``fixtures_status/``; Workflows are those of
``fixtures_status/workflows/`` (from the argo-workflows repository's tests), and their pods carry
the annotations the Argo controller sets (node id, node name) under the names it derives.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from airflow_k8s_jobs.errors import JobFailedError, WorkflowFailedError
from airflow_k8s_jobs.status import NODE_ID_ANNOTATION, NODE_NAME_ANNOTATION, interpret_workflow
from airflow_k8s_jobs.status.outcome import (
    FAILURE_LOG_LINES,
    GAVE_UP_ON_CAPACITY,
    GAVE_UP_ON_PODS,
    GAVE_UP_ON_TIMEOUT,
    Outcome,
    failed_pods_without_log,
    gave_up_on,
    job_task_outcome,
    pods_by_node,
    same_object,
    workflow_after_event,
    workflow_pod_label,
    workflow_result,
    workflow_task_outcome,
)
from airflow_k8s_jobs.status.workflows import WORKFLOW_LABEL, WorkflowState

FIXTURES = Path(__file__).parent / "fixtures_status"


def captured_job(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def workflow(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((FIXTURES / "workflows" / f"{name}.yaml").read_text())
    return data


def state_of(wf: dict[str, Any]) -> WorkflowState:
    meta = wf["metadata"]
    return interpret_workflow(wf, name=meta["name"], namespace=meta.get("namespace", ""))


def pods_of(wf: dict[str, Any], phase: str = "Failed") -> list[dict[str, Any]]:
    """The Workflow's Pod nodes' pods as the controller makes them."""
    state, name = state_of(wf), wf["metadata"]["name"]
    return [
        {
            "metadata": {
                "name": state.pod_name(node),
                "namespace": wf["metadata"].get("namespace", ""),
                "labels": {WORKFLOW_LABEL: name},
                "annotations": {NODE_ID_ANNOTATION: node.id, NODE_NAME_ANNOTATION: node.name},
            },
            "status": {"phase": phase},
        }
        for node in state.nodes.values()
        if node.type == "Pod"
    ]


def event(status: str, **fields: Any) -> dict[str, Any]:
    return {"status": status, "namespace": "batch", "name": "x", "uid": "u", **fields}


# --- Jobs ---------------------------------------------------------------------------------------


def test_a_job_that_succeeded_logs_the_waiters_message() -> None:
    pods = captured_job("success_complete")["pods"]
    outcome = job_task_outcome(
        event("success", message="Complete: 2/2 succeeded", status_line="2 succeeded"),
        "Job batch/ok on c",
        pods,
        {},
    )
    assert outcome == Outcome("Complete: 2/2 succeeded")
    assert outcome.succeeded and not outcome.final
    assert job_task_outcome(event("success", status_line="2 succeeded"), "J", pods, {}).message == (
        "2 succeeded"
    )


def test_a_failed_job_is_retried_with_its_pods_and_log_tails() -> None:
    pods = captured_job("backoff_limit_exceeded")["pods"]
    names = [p["metadata"]["name"] for p in pods]
    log = "\n".join(f"line {i}" for i in range(50))
    outcome = job_task_outcome(
        event("failed", reason="BackoffLimitExceeded", message="Job has reached the limit"),
        "Job batch/crash on c",
        pods,
        {names[0]: log},
    )
    assert outcome.error is JobFailedError and not outcome.final and not outcome.succeeded
    assert outcome.message.startswith(
        "Job batch/crash on c failed: BackoffLimitExceeded: Job has reached the limit"
    )
    assert names[0] in outcome.message
    assert f"line {49 - FAILURE_LOG_LINES}" not in outcome.message
    assert "line 49" in outcome.message and f"line {50 - FAILURE_LOG_LINES}" in outcome.message


def test_pods_that_cannot_run_fail_the_job_for_good() -> None:
    pods = captured_job("invalid_image_name")["pods"]
    outcome = job_task_outcome(
        event("failed", reason="InvalidImageName", message="bad image", permanent=True),
        "Job batch/img on c",
        pods,
        {},
    )
    assert outcome.error is JobFailedError and outcome.final
    assert outcome.gave_up == GAVE_UP_ON_PODS


def test_a_job_that_failed_or_succeeded_on_its_own_is_not_given_up_on() -> None:
    pods = captured_job("backoff_limit_exceeded")["pods"]
    failed = event("failed", reason="BackoffLimitExceeded", message="limit")
    assert job_task_outcome(failed, "J", pods, {}).gave_up is None
    assert job_task_outcome(event("success", message="ok"), "J", pods, {}).gave_up is None
    # Deleted by someone else: nothing left to give up on.
    assert gave_up_on("Job", event("failed", reason="JobDeleted", message="gone")) is None


def test_a_job_waiting_for_capacity_past_its_timeout_is_given_up_on() -> None:
    waited = event("failed", reason="CapacityTimeout", message="waited 3s for capacity")
    assert gave_up_on("Job", waited) == GAVE_UP_ON_CAPACITY
    outcome = job_task_outcome(waited, "Job batch/big on c", [], {})
    assert outcome.gave_up == GAVE_UP_ON_CAPACITY and not outcome.final


def test_an_execution_timeout_gives_up_on_jobs_and_workflows() -> None:
    timeout = event("timeout", reason="ExecutionTimeout", message="still running")
    assert gave_up_on("Job", timeout) == GAVE_UP_ON_TIMEOUT
    assert gave_up_on("Workflow", timeout) == GAVE_UP_ON_TIMEOUT


def test_a_finished_workflow_is_never_given_up_on() -> None:
    # A Workflow the controller rejected has finished (phase Error): permanent, not live.
    rejected = event("failed", reason="Error", phase="Error", permanent=True)
    assert gave_up_on("Workflow", rejected) is None
    assert gave_up_on("Workflow", event("failed", reason="WorkflowDeleted")) is None
    assert gave_up_on("Workflow", event("success", phase="Succeeded")) is None


# --- Workflows ----------------------------------------------------------------------------------


def test_the_workflow_read_after_the_event_counts_only_if_it_is_the_same() -> None:
    wf = workflow("steps_failed_retries")
    uid, name, ns = wf["metadata"]["uid"], wf["metadata"]["name"], "default"
    assert same_object(wf, uid) is wf
    assert same_object(wf, "another-uid") is None and same_object(None, uid) is None
    state = workflow_after_event(wf, uid, name, ns)
    assert state is not None and state.phase == "Failed"
    assert workflow_after_event(wf, "another-uid", name, ns) is None  # replaced: use the event
    assert workflow_after_event(None, uid, name, ns) is None  # gone


def test_pods_are_found_by_their_node_and_named_relative_to_the_workflow() -> None:
    wf = workflow("steps_failed_retries")
    pods = pods_of(wf)
    found = pods_by_node(pods)
    assert found["failed-retries-tjjsc-759866442"] == "failed-retries-tjjsc-fail-759866442"
    assert len(found) == 4
    assert pods_by_node([{"metadata": {"name": "other"}}]) == {}
    labels = sorted(workflow_pod_label(p, "failed-retries-tjjsc") for p in pods)
    assert "failed-retries-tjjsc-fail-759866442 [0].fail(1)" in labels
    assert workflow_pod_label({"metadata": {"name": "lone"}}, "failed-retries-tjjsc") == "lone"


def test_a_failed_workflow_reads_the_logs_of_its_failed_pods_not_read_yet() -> None:
    wf = workflow("steps_failed_retries")
    state, pods = state_of(wf), pods_of(wf)
    names = pods_by_node(pods)
    missing = failed_pods_without_log(state, names, {})
    assert missing == [
        "failed-retries-tjjsc-fail-759866442",
        "failed-retries-tjjsc-delayed-fail-2113289837",
    ]
    read = {missing[0]: "boom"}
    assert failed_pods_without_log(state, names, read) == missing[1:]
    # Without the pods (pod GC ...), the names are derived as the controller derives them.
    assert failed_pods_without_log(state, {}, {}) == missing


def test_a_failed_workflow_is_explained_by_its_failed_nodes_and_their_logs() -> None:
    wf = workflow("steps_failed_retries")
    state, pods = state_of(wf), pods_of(wf)
    names = pods_by_node(pods)
    logs = {"failed-retries-tjjsc-fail-759866442": "exit status 1: the last words"}
    where = "Workflow default/failed-retries-tjjsc on c"
    failed = event("failed", phase="Failed", message="child failed")
    outcome = workflow_task_outcome(failed, where, state, logs, names)
    assert outcome.error is WorkflowFailedError and not outcome.final
    assert outcome.message.startswith(where) and "the last words" in outcome.message
    rejected = event("failed", phase="Error", message="invalid spec: x", permanent=True)
    assert workflow_task_outcome(rejected, where, None, {}, {}) == Outcome(
        f"{where} Error: invalid spec: x", WorkflowFailedError, final=True
    )
    gone = workflow_task_outcome(event("failed", message="deleted"), where, None, {}, {})
    assert gone.message == f"{where} failed: deleted"


def test_a_workflow_that_succeeded_returns_its_outputs() -> None:
    wf = workflow("dag_with_items_outputs")
    state = state_of(wf)
    done = event("success", phase="Succeeded", status_line="Succeeded 2/2", message="done")
    assert workflow_task_outcome(done, "W", state, {}, {}) == Outcome("Succeeded 2/2")
    result = workflow_result("parameter-aggregation-dag-h8b82", "argo", "u1", done, state)
    assert result == {
        "name": "parameter-aggregation-dag-h8b82",
        "namespace": "argo",
        "uid": "u1",
        "phase": "Succeeded",
        "outputs": {"nums": '["1","2"]'},
        "node_outputs": {
            "odd-or-even(0:1)": {"num": "1", "evenness": "odd"},
            "odd-or-even(1:2)": {"num": "2", "evenness": "even"},
            "parameter-aggregation-dag-h8b82": {"dag-nums": '["1","2"]'},
        },
    }
    json.dumps(result)  # it goes to XCom


def test_a_workflow_gone_after_succeeding_returns_what_the_event_carried() -> None:
    done = event(
        "success",
        phase="Succeeded",
        outputs={"nums": "[1]"},
        node_outputs={"a": {"x": "1"}},
    )
    assert workflow_result("w", "ns", "u", done, None)["outputs"] == {"nums": "[1]"}
    assert workflow_result("w", "ns", "u", done, None)["node_outputs"] == {"a": {"x": "1"}}
    bare = workflow_result("w", "ns", "u", event("success"), None)
    assert bare["outputs"] == {} and bare["node_outputs"] == {} and bare["phase"] is None
