"""Waiting for a Job or an Argo Workflow: the loops behind both the deferred triggers and the
synchronous mode.

Each subscribes to the shared watch hub (never polls), is woken only by changes to its own
objects (index keys, see ``watching.py``) or by its next deadline, interprets each change
with the pure ``status`` module, logs the status line when it changes, enforces its deadlines
with its own clock (so they are testable without real waiting), and returns a plain dict — the
``TriggerEvent`` payload — once the outcome is known.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from .errors import NotFound
from .kube import EVENTS, JOBS, PODS, WORKFLOWS, WORKLOADS, Resource, request
from .live_logs import DEFAULT_STREAMS, LiveLogs
from .manifests.names import MANAGED_BY
from .retrying import RetryPolicy
from .status import Phase, interpret_job
from .status.pods import ROUTINE_EVENT_REASONS
from .status.workflows import interpret_workflow
from .watching import (
    BY_INVOLVED_UID,
    BY_KUEUE_JOB_UID,
    BY_NAME,
    BY_OWNER_UID,
    ClientSource,
    Subscription,
    Watched,
    WatchHub,
)
from .watching import JOB_NAME_LABEL as JOB_NAME_LABEL
from .watching import JOB_UID_LABEL as JOB_UID_LABEL
from .watching import KUEUE_JOB_UID_LABEL as KUEUE_JOB_UID_LABEL

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
WORKFLOW_LABEL = "workflows.argoproj.io/workflow"

FINAL_POD_PHASES = ("Succeeded", "Failed")

MANAGED_SELECTOR = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
UNROUTINE_EVENTS = ",".join(f"reason!={reason}" for reason in ROUTINE_EVENT_REASONS)
"""The field selector of the Events waiters watch: a healthy pod's seven or so routine Events
are neither sent nor cached (most of the Events of a busy namespace)."""


@dataclass(frozen=True)
class JobTarget:
    """Which Job to wait for, where (no credentials: only the connection id)."""

    cluster_conn_id: str
    cluster_name: str
    namespace: str
    name: str
    uid: str
    queued: bool = False

    @property
    def where(self) -> str:
        return f"Job {self.namespace}/{self.name} on {self.cluster_name}"


@dataclass(frozen=True)
class WaitPolicy:
    capacity_timeout: float | None = 3600.0
    """Seconds pods may wait for nodes or quota; None waits for ever."""
    image_pull_grace: float = 300.0
    """Seconds an image pull may keep failing before the task fails."""
    termination_grace: float = 120.0
    """Seconds to wait for pods to terminate once the outcome is decided."""
    deadline: float | None = None
    """Wall-clock instant (epoch seconds) the task must end by: its ``execution_timeout``."""
    live_log_streams: int = DEFAULT_STREAMS
    """Containers whose new log lines are written to the task log at once; 0: none."""


def _result(
    target: JobTarget, status: str, reason: str, message: str, **extra: Any
) -> dict[str, Any]:
    return {
        "status": status,
        "reason": reason,
        "message": message,
        "namespace": target.namespace,
        "name": target.name,
        "uid": target.uid,
        **extra,
    }


def _earliest(timeout: float | None, left: float) -> float:
    return left if timeout is None else min(timeout, left)


@contextlib.asynccontextmanager
async def _live_logs(
    sub: Subscription, namespace: str, log: Any, streams: int, containers: Any = None
) -> AsyncIterator[LiveLogs | None]:
    """Live logs of the pods the subscription sees (None when turned off)."""
    if streams <= 0:
        yield None
        return
    live = LiveLogs(sub.api_client, namespace, log, containers=containers, max_streams=streams)
    try:
        yield live
    except BaseException:
        await live.aclose(grace=0)
        raise
    await live.aclose()


async def _catch_up_with_pods(
    sub: Subscription,
    job: dict[str, Any],
    is_ours: Callable[[dict[str, Any]], bool],
    live: LiveLogs,
    seconds: float = 2.0,
) -> None:
    """Give the live logs the pods the Job counted as finished that the pod watch (a stream of
    its own, a little behind the Job's at times) has not shown yet; for at most ``seconds``."""
    status = job.get("status") or {}
    counted = int(status.get("succeeded") or 0) + int(status.get("failed") or 0)
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    while True:
        pods = [
            p for p in sub.indexed(PODS, BY_OWNER_UID, str(job["metadata"]["uid"])) if is_ours(p)
        ]
        live.update(pods)
        ended = sum(1 for p in pods if (p.get("status") or {}).get("phase") in FINAL_POD_PHASES)
        left = until - loop.time()
        if ended >= counted or left <= 0:
            return
        await sub.changed(timeout=left)


LOOKUP_RETRY = RetryPolicy()
"""How the read of an object missing from the cache is retried (about 30 s in all)."""


async def _unless_gone(
    sub: Subscription, resource: Resource, namespace: str, name: str, uid: str
) -> dict[str, Any] | None:
    """The object (uid ``uid``) the cache does not hold, read from the API server, or None
    when it is gone or replaced by another of the same name.

    The cache can be behind: a watch that has not yet brought an object just created, one that
    is reconnecting, or one of all namespaces that has just taken over from a namespace's. An
    object missing from it is therefore only taken as deleted once the API server says so.
    Raises :class:`TransientError` when the server could not be asked, retries included.
    """
    path, what = resource.path(namespace, name), f"reading {resource.kind} {namespace}/{name}"
    try:
        obj = await LOOKUP_RETRY.acall(lambda: request(sub.api_client, "GET", path, what=what))
    except NotFound:
        return None
    if not isinstance(obj, dict) or (obj.get("metadata") or {}).get("uid") != uid:
        return None
    return obj


async def wait_for_job(
    clients: ClientSource,
    target: JobTarget,
    policy: WaitPolicy,
    log: Any,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Wait until the Job's outcome is known; the result dict says success or why not.

    ``status`` is ``success``, ``failed``, or ``timeout`` when ``policy.deadline`` passed first.
    ``permanent: True`` marks a failure because a pod cannot run (a problem that does not fix
    itself, such as an invalid image name).
    """

    def is_ours(obj: dict[str, Any]) -> bool:
        labels = obj["metadata"].get("labels") or {}
        return labels.get(JOB_UID_LABEL) == target.uid

    def is_its_workload(obj: dict[str, Any]) -> bool:
        labels = obj["metadata"].get("labels") or {}
        return labels.get(KUEUE_JOB_UID_LABEL) == target.uid

    # Woken only by changes to the Job, its pods, their Events and its Workload (index keys).
    resources: list[Watched] = [
        (JOBS, MANAGED_SELECTOR),
        (PODS, MANAGED_SELECTOR),
        (EVENTS, "", UNROUTINE_EVENTS),
    ]
    follow = [
        (JOBS, BY_NAME, target.name),
        (PODS, BY_OWNER_UID, target.uid),
        (EVENTS, BY_INVOLVED_UID, target.uid),
    ]
    if target.queued:
        resources.append(WORKLOADS)
        follow.append((WORKLOADS, BY_KUEUE_JOB_UID, target.uid))
    hub = WatchHub.current()
    last_line = ""
    capacity_since: float | None = None
    decided_since: float | None = None
    async with (
        hub.subscribe(
            target.cluster_conn_id, clients, target.namespace, resources, follow=follow
        ) as sub,
        _live_logs(sub, target.namespace, log, policy.live_log_streams) as live,
    ):
        await sub.wait_synced()
        while True:
            job = sub.get(JOBS, target.name)
            if job is not None and job["metadata"].get("uid") != target.uid:
                job = None  # a different Job of the same name replaced ours
            if job is None:
                job = await _unless_gone(sub, JOBS, target.namespace, target.name, target.uid)
            pods = [p for p in sub.indexed(PODS, BY_OWNER_UID, target.uid) if is_ours(p)]
            if live is not None:
                live.update(pods)
            pod_uids = [str(p["metadata"]["uid"]) for p in pods if p["metadata"].get("uid")]
            for uid in pod_uids:  # their Events wake it from now on
                sub.follow(EVENTS, BY_INVOLVED_UID, uid)
            events = sub.indexed_any(EVENTS, BY_INVOLVED_UID, [target.uid, *pod_uids])
            workload = None
            if target.queued:
                found = sub.indexed(WORKLOADS, BY_KUEUE_JOB_UID, target.uid)
                found = [w for w in found if is_its_workload(w)]
                workload = found[0] if found else None
            state = interpret_job(
                job,
                pods,
                events,
                workload,
                image_pull_grace_seconds=policy.image_pull_grace,
                name=target.name,
                namespace=target.namespace,
            )
            if state.status_line != last_line:
                log.info("%s: %s", target.where, state.status_line)
                last_line = state.status_line
            extra = {
                "status_line": state.status_line,
                "failed_pods": list(state.failed_pods),
                "succeeded": state.succeeded,
                "failed": state.failed,
            }
            if job is None:
                return _result(
                    target, "failed", state.reason or "JobDeleted", state.message, **extra
                )
            problem = state.permanent_problem
            if problem is not None and not state.finished:
                message = f"{target.where} cannot run: {problem.message}"
                # ``permanent``: another try would fail the same way.
                return _result(target, "failed", problem.reason, message, permanent=True, **extra)
            if state.finished:
                decided_since = decided_since if decided_since is not None else clock()
                if state.pods_gone or clock() - decided_since >= policy.termination_grace:
                    if live is not None:
                        await _catch_up_with_pods(sub, job, is_ours, live)
                    status = "success" if state.phase is Phase.SUCCEEDED else "failed"
                    return _result(target, status, state.reason, state.message, **extra)
            if state.waiting_on_capacity:
                capacity_since = capacity_since if capacity_since is not None else clock()
            else:
                capacity_since = None
            timeout: float | None = None  # no deadline: sleep until something changes
            if policy.deadline is not None:
                left_total = policy.deadline - wall_clock()
                if left_total <= 0:
                    message = (
                        f"{target.where} was still running when the task's "
                        f"execution_timeout ran out ({state.status_line})."
                    )
                    return _result(target, "timeout", "ExecutionTimeout", message, **extra)
                timeout = _earliest(timeout, left_total)
            if capacity_since is not None and policy.capacity_timeout is not None:
                left = policy.capacity_timeout - (clock() - capacity_since)
                if left <= 0:
                    detail = state.capacity_detail or state.status_line
                    message = (
                        f"{target.where} waited {policy.capacity_timeout:.0f}s for "
                        f"capacity without getting it: {detail}. Raise capacity_timeout, "
                        "add capacity (node pool size, quota), or lower the requests."
                    )
                    return _result(target, "failed", "CapacityTimeout", message, **extra)
                timeout = _earliest(timeout, left)
            if decided_since is not None:
                timeout = _earliest(
                    timeout, max(0.0, policy.termination_grace - (clock() - decided_since))
                )
            await sub.changed(timeout=timeout)


# --- Argo Workflows -----------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkflowTarget:
    """Which Argo Workflow to wait for, where (no credentials: only the connection id)."""

    cluster_conn_id: str
    cluster_name: str
    namespace: str
    name: str
    uid: str

    @property
    def where(self) -> str:
        return f"Workflow {self.namespace}/{self.name} on {self.cluster_name}"


def _workflow_result(
    target: WorkflowTarget, status: str, reason: str, message: str, state: Any
) -> dict[str, Any]:
    return {
        "status": status,
        "reason": reason,
        "message": message,
        "namespace": target.namespace,
        "name": target.name,
        "uid": target.uid,
        "phase": state.phase,
        "progress": state.progress,
        "status_line": state.status_line,
        "outputs": dict(state.outputs),
        "node_outputs": {k: dict(v) for k, v in state.node_outputs.items()},
        # The controller refused the spec: another try would fail the same way.
        "permanent": state.rejected,
    }


async def wait_for_workflow(
    clients: ClientSource,
    target: WorkflowTarget,
    log: Any,
    deadline: float | None = None,
    wall_clock: Callable[[], float] = time.time,
    live_log_streams: int = DEFAULT_STREAMS,
) -> dict[str, Any]:
    """Wait until the Workflow has finished; the result dict says success or why not.

    Finished means ``status.finishedAt`` set with phase Succeeded, Failed or Error: a Pending
    Workflow (queued, or postponed by the controller's parallelism) keeps waiting. ``status`` is
    ``success``, ``failed``, or ``timeout`` when ``deadline`` (epoch seconds, the task's
    ``execution_timeout``) passed first. ``permanent`` is True when the controller refused the
    Workflow's spec. Every managed Workflow of a namespace shares one watch, and so do their
    pods, whose ``main`` containers' new log lines go to ``log`` (``live_log_streams`` at once).
    """

    def is_ours(pod: dict[str, Any]) -> bool:
        labels = pod["metadata"].get("labels") or {}
        return labels.get(WORKFLOW_LABEL) == target.name

    resources: list[Watched] = [(WORKFLOWS, MANAGED_SELECTOR)]
    follow = [(WORKFLOWS, BY_NAME, target.name)]
    if live_log_streams > 0:  # Argo's pods carry the Workflow's name, not its labels
        resources.append((PODS, WORKFLOW_LABEL))
        follow.append((PODS, BY_OWNER_UID, target.uid))
    hub = WatchHub.current()
    last_line = ""
    async with (
        hub.subscribe(
            target.cluster_conn_id, clients, target.namespace, resources, follow=follow
        ) as sub,
        _live_logs(sub, target.namespace, log, live_log_streams, ["main"]) as live,
    ):
        await sub.wait_synced()
        while True:
            workflow = sub.get(WORKFLOWS, target.name)
            if workflow is not None and workflow["metadata"].get("uid") != target.uid:
                workflow = None  # a different Workflow of the same name replaced ours
            if workflow is None:
                workflow = await _unless_gone(
                    sub, WORKFLOWS, target.namespace, target.name, target.uid
                )
            if live is not None:
                live.update([p for p in sub.indexed(PODS, BY_OWNER_UID, target.uid) if is_ours(p)])
            state = interpret_workflow(workflow, name=target.name, namespace=target.namespace)
            if state.status_line != last_line:
                log.info("%s: %s", target.where, state.status_line)
                last_line = state.status_line
            if not state.exists:
                message = (
                    f"{target.where} was deleted while the task waited for it (by someone "
                    "else, or by a TTL shorter than the run); its outcome is unknown. Look for "
                    "it in the Argo Server's archive, or run the task again."
                )
                return _workflow_result(target, "failed", "WorkflowDeleted", message, state)
            if state.finished:
                status = "success" if state.succeeded else "failed"
                return _workflow_result(target, status, state.reason, state.message, state)
            timeout: float | None = None  # no deadline: sleep until something changes
            if deadline is not None:
                left = deadline - wall_clock()
                if left <= 0:
                    message = (
                        f"{target.where} was still running when the task's execution_timeout "
                        f"ran out ({state.status_line})."
                    )
                    return _workflow_result(target, "timeout", "ExecutionTimeout", message, state)
                timeout = left
            await sub.changed(timeout=timeout)
