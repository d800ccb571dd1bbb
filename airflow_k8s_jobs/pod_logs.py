"""The pods' logs once a Job or Workflow has finished: list its pods, read each log and write it
to the task log (prefixed, long logs cut in the middle). Every request goes through a ``request``
callable (the operator's, which follows :data:`~airflow_k8s_jobs.retrying.API_RETRY`). The live
logs while it runs are :mod:`airflow_k8s_jobs.live_logs`."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import KubeApiError, TransientError
from .kube import PODS
from .status.outcome import failed_pods_without_log, pods_by_node, workflow_pod_label
from .status.results import by_index, pod_label
from .status.workflows import WORKFLOW_LABEL, WorkflowState
from .watching import JOB_UID_LABEL

Request = Callable[..., Any]
"""``request(method, path, *, what, **kwargs)``: one API request, following the retry policy."""
LOG_HEAD_LINES = 50
LOG_TAIL_LINES = 200
MAIN_CONTAINER = "main"
"""The container of a Workflow's pod whose log is read."""
MAX_LOGGED_PODS = 100
"""A Workflow's pods whose logs are written to the task log: the last ones."""
KEPT_LINES = 50
KEPT_CHARS = 16 * 1024
"""What is kept of each pod's log once written (for the failure message, which shows tails):
its last :data:`KEPT_LINES` lines within :data:`KEPT_CHARS`, so that memory does not grow with
the pods' log sizes (a fan-out of thousands of pods)."""


def log_tail(text: str) -> str:
    """The end of a log that is kept after it was written: see :data:`KEPT_LINES`."""
    tail = "".join(text.splitlines(keepends=True)[-KEPT_LINES:])
    return tail[-KEPT_CHARS:]


def list_pods(request: Callable[..., Any], namespace: str, selector: str, what: str) -> list[Any]:
    """The pods matching a label selector, oldest first (``request``: the operator's API call,
    which follows the retry policy)."""
    body = request(
        "GET",
        PODS.path(namespace),
        query=[("labelSelector", selector)],
        what=f"listing the pods of {what}",
    )
    pods = list(body.get("items") or [])
    return sorted(
        pods, key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"])
    )


def read_pod_log(
    request: Callable[..., Any],
    namespace: str,
    pod_name: str,
    where: str,
    container: str | None = None,
) -> str:
    """The log of one pod (at most 4 MiB), or a note saying why there is none."""
    query: list[tuple[str, Any]] = [("limitBytes", 4 * 1024 * 1024)]
    if container:
        query.append(("container", container))
    try:
        text = request(
            "GET",
            PODS.path(namespace, pod_name, "log"),
            query=query,
            what=f"reading the log of pod {pod_name} of {where}",
        )
    except (KubeApiError, TransientError) as exc:
        return f"<no log: {exc}>"
    return text if isinstance(text, str) else json.dumps(text)


def print_pod_log(log: logging.Logger | Any, prefix: str, phase: str | None, text: str) -> None:
    """Write a pod's log to the task log, each line prefixed; long logs keep head and tail."""
    lines = text.splitlines()
    total = len(lines)
    if total > LOG_HEAD_LINES + LOG_TAIL_LINES:
        skipped = total - LOG_HEAD_LINES - LOG_TAIL_LINES
        lines = [
            *lines[:LOG_HEAD_LINES],
            f"... {skipped} lines skipped ...",
            *lines[-LOG_TAIL_LINES:],
        ]
    log.info("---- %s (%s): %d log lines", prefix, phase, total)
    for line in lines:
        log.info("%s | %s", prefix, line)


def print_pod_logs(
    request: Request,
    log: logging.Logger | Any,
    namespace: str,
    pods: Sequence[Mapping[str, Any]],
    where: str,
    label: Callable[[Mapping[str, Any]], str],
    container: str | None = None,
    limit: int | None = None,
) -> dict[str, str]:
    """Write each pod's log (the last ``limit`` pods' only) to the task log, prefixed by
    ``label(pod)``; returns pod name → the log's end (:func:`log_tail`)."""
    if limit is not None and len(pods) > limit:
        log.info("%s has %d pods; writing the logs of the last %d.", where, len(pods), limit)
        pods = pods[-limit:]
    logs: dict[str, str] = {}
    for pod in pods:
        name = pod["metadata"]["name"]
        text = read_pod_log(request, namespace, name, where, container)
        phase = (pod.get("status") or {}).get("phase")
        print_pod_log(log, label(pod), phase, text)
        logs[name] = log_tail(text)
    return logs


def job_pod_logs(
    request: Request, log: logging.Logger | Any, namespace: str, uid: str, where: str
) -> tuple[list[Mapping[str, Any]], dict[str, str]]:
    """The Job's pods (by completion index, oldest first) and their logs (pod name → log), each
    written to the task log."""
    pods = by_index(list_pods(request, namespace, f"{JOB_UID_LABEL}={uid}", f"Job {namespace}"))
    return pods, print_pod_logs(request, log, namespace, pods, where, pod_label)


def workflow_pod_logs(
    request: Request,
    log: logging.Logger | Any,
    namespace: str,
    name: str,
    where: str,
    *,
    write: bool,
    failed: WorkflowState | None,
) -> tuple[dict[str, str], dict[str, str]]:
    """The Workflow's pods (node id → pod name) and their logs (pod name → log): those of the
    last :data:`MAX_LOGGED_PODS` pods written to the task log when ``write``, and, for a failed
    Workflow's state ``failed``, those of its failed Pod nodes (read, not written)."""
    pods = list_pods(request, namespace, f"{WORKFLOW_LABEL}={name}", where)
    pod_names = pods_by_node(pods)
    logs: dict[str, str] = {}
    if write:
        label = functools.partial(workflow_pod_label, workflow_name=name)
        logs = print_pod_logs(
            request, log, namespace, pods, where, label, MAIN_CONTAINER, MAX_LOGGED_PODS
        )
    if failed is not None:
        for pod in failed_pods_without_log(failed, pod_names, logs):
            logs[pod] = read_pod_log(request, namespace, pod, where, MAIN_CONTAINER)
    return pod_names, logs
