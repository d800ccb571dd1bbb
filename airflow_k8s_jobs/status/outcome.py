"""What a finished wait means for the task, without I/O: success or which failure (with its
message, and whether another try would fail the same way), whether an object read is still the
one the task created, which pods' logs the failure message needs, how the task log names a
Workflow's pods, and what a Workflow gives back to XCom.

The operators read the objects and the logs, then raise or return what is decided here; the
waiter's result dict (the trigger event) is described in :mod:`airflow_k8s_jobs.waiting`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import JobFailedError, WorkflowFailedError
from ._objects import Obj, meta
from .summary import summarize_job_verdict
from .workflows import (
    NODE_ID_ANNOTATION,
    NODE_NAME_ANNOTATION,
    WorkflowState,
    interpret_workflow,
    summarize_workflow_failure,
)

FAILURE_LOG_LINES = 20
"""Lines of each failed pod's log in a Job's failure message."""


@dataclass(frozen=True)
class Outcome:
    """What the task does with a finished wait.

    ``error`` is None on success (``message`` then says how it went, for the task log);
    otherwise the exception to raise with ``message``. ``final``: the same input fails the same
    way on every try, so Airflow must not retry.
    """

    message: str
    error: type[Exception] | None = None
    final: bool = False
    gave_up: str | None = None
    """Set when the task fails while the object has not finished (see :func:`gave_up_on`):
    why the task stops it, ending "so that it does not …"."""

    @property
    def succeeded(self) -> bool:
        return self.error is None


GAVE_UP_ON_CAPACITY = "wait for capacity for ever"
GAVE_UP_ON_PODS = "stay pending for ever"
GAVE_UP_ON_TIMEOUT = "keep running after the task's execution_timeout"
GAVE_UP_UNHEARD = "keep running after the task failed without hearing from it"
"""Airflow failed the deferred task without an event (its backstop timeout, a failed trigger)."""


def gave_up_on(kind: str, event: Mapping[str, Any]) -> str | None:
    """Why the task gives up on a Job or Workflow that has not finished, or None when the
    object finished on its own (users read its pods until its TTL), is gone or succeeded.

    ``kind`` is ``Job`` or ``Workflow``; ``event`` the waiter's result (see
    :mod:`airflow_k8s_jobs.waiting`): ``timeout`` (the task's ``execution_timeout``), a
    ``CapacityTimeout``, or a Job's ``permanent`` problem (its pods cannot run; a Workflow's
    ``permanent`` failure is a finished one). The result ends a sentence "… so that it does
    not …".
    """
    if event.get("status") == "timeout":
        return GAVE_UP_ON_TIMEOUT
    if event.get("status") != "failed":
        return None
    if event.get("reason") == "CapacityTimeout":
        return GAVE_UP_ON_CAPACITY
    if kind == "Job" and event.get("permanent"):
        return GAVE_UP_ON_PODS
    return None


def job_task_outcome(
    event: Mapping[str, Any], where: str, pods: Sequence[Obj], logs: Mapping[str, str]
) -> Outcome:
    """The outcome of a Job's wait (not a timeout): ``event`` is the waiter's result, ``pods``
    the Job's pods now and ``logs`` pod name → log text."""
    if event["status"] == "success":
        return Outcome(str(event.get("message") or event.get("status_line")))
    headline = f"{where} failed: {event.get('reason')}: {event.get('message')}"
    message = summarize_job_verdict(headline, pods, logs, tail_lines=FAILURE_LOG_LINES)
    # Pods that cannot run (a bad image ...): another try would fail the same way.
    final = bool(event.get("permanent"))
    return Outcome(message, JobFailedError, final=final, gave_up=gave_up_on("Job", event))


def workflow_task_outcome(
    event: Mapping[str, Any],
    where: str,
    state: WorkflowState | None,
    logs: Mapping[str, str],
    pod_names: Mapping[str, str],
) -> Outcome:
    """The outcome of a Workflow's wait (not a timeout). ``state`` is the Workflow read after
    the event (None once it is gone: the event says what is known), ``logs`` pod name → log text,
    ``pod_names`` node id → pod name (:func:`pods_by_node`)."""
    if event["status"] == "success":
        return Outcome(str(event.get("status_line") or event.get("message")))
    # A Workflow the controller rejected fails the same way on every try.
    final = bool(event.get("permanent"))
    if state is None:
        message = f"{where} {event.get('phase') or 'failed'}: {event.get('message')}"
    else:
        message = summarize_workflow_failure(state, where, logs, pod_names=pod_names)
    return Outcome(message, WorkflowFailedError, final=final)


def same_object(obj: Obj | None, uid: str) -> Obj | None:
    """``obj`` if it is the object with ``uid``; None if there is none, or it is another one
    created under the same name meanwhile."""
    return obj if obj is not None and meta(obj).get("uid") == uid else None


def workflow_after_event(
    workflow: Obj | None, uid: str, name: str, namespace: str
) -> WorkflowState | None:
    """The state of the Workflow read after its wait ended; None when it is gone or replaced
    by another of the same name (the waiter's result then says what is known)."""
    state = interpret_workflow(same_object(workflow, uid), name=name, namespace=namespace)
    return state if state.exists else None


def pods_by_node(pods: Sequence[Obj]) -> dict[str, str]:
    """Node id → pod name, from the pods' ``workflows.argoproj.io/node-id`` annotation."""
    found: dict[str, str] = {}
    for pod in pods:
        node = (meta(pod).get("annotations") or {}).get(NODE_ID_ANNOTATION)
        if node:
            found[node] = meta(pod)["name"]
    return found


def failed_pods_without_log(
    state: WorkflowState, pod_names: Mapping[str, str], logs: Mapping[str, str]
) -> list[str]:
    """The pods of the failed Pod nodes whose logs were not read yet (the failure message shows
    their tails)."""
    missing: list[str] = []
    for node in state.failed_nodes:
        pod = pod_names.get(node.id) or state.pod_name(node)
        if node.type == "Pod" and pod not in logs and pod not in missing:
            missing.append(pod)
    return missing


def workflow_pod_label(pod: Obj, workflow_name: str) -> str:
    """How the task log names a Workflow's pod: the pod and its node relative to the Workflow
    (``wf-task2-123 [1].task2``), or the pod alone."""
    node = (meta(pod).get("annotations") or {}).get(NODE_NAME_ANNOTATION, "")
    return f"{meta(pod)['name']} {node.removeprefix(workflow_name)}".strip()


def workflow_result(
    name: str,
    namespace: str,
    uid: str,
    event: Mapping[str, Any],
    state: WorkflowState | None,
) -> dict[str, Any]:
    """The XCom ``return_value`` of a Workflow that succeeded: from ``state`` when it could be
    read after the event, else from the event."""
    outputs = state.outputs if state else event.get("outputs") or {}
    node_outputs = state.node_outputs if state else event.get("node_outputs") or {}
    return {
        "name": name,
        "namespace": namespace,
        "uid": uid,
        "phase": event.get("phase"),
        "outputs": dict(outputs),
        "node_outputs": {k: dict(v) for k, v in node_outputs.items()},
    }
