"""What the operators share: the task instance key, deadlines, submit-or-re-attach, pod logs."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import Any

from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from .._compat import Context
from ..errors import InvalidInputError, KubeApiError, TransientError
from ..kube import PODS, Resource, request_sync
from ..manifests.names import TaskInstanceKey, matches_task

LOG_HEAD_LINES = 50
LOG_TAIL_LINES = 200

api_retry = retry(
    retry=retry_if_exception_type(TransientError),
    wait=wait_exponential_jitter(initial=1, max=30),
    stop=stop_after_attempt(6),
    reraise=True,
)
"""Retry an API call on 429, 5xx and dropped connections, with jittered backoff."""


def seconds(value: timedelta | float | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def task_instance_key(context: Context) -> TaskInstanceKey:
    """The try of the task instance that is running."""
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    return TaskInstanceKey(
        ti.dag_id,
        ti.task_id,
        ti.run_id,
        -1 if map_index is None else int(map_index),
        int(ti.try_number),
    )


def execution_deadline(execution_timeout: timedelta | None, context: Context) -> float | None:
    """Epoch seconds at which ``execution_timeout`` runs out (also while deferred)."""
    if execution_timeout is None:
        return None
    started = getattr(context["ti"], "start_date", None)
    start = started.timestamp() if started is not None else time.time()
    return start + execution_timeout.total_seconds()


def create_or_adopt(
    api: Any,
    resource: Resource,
    manifest: dict[str, Any],
    namespace: str,
    key: TaskInstanceKey,
    *,
    where: str,
    timeout: float,
    log: logging.Logger | Any,
) -> dict[str, Any]:
    """Create ``manifest`` after a server-side dry run, or re-attach to the object this same try
    created before (a worker that died between submitting and deferring).

    The dry run (``fieldValidation=Strict``) lets the API server reject bad input before anything
    exists. On ``409 AlreadyExists`` the existing object is adopted only if its labels say it was
    created by exactly this task instance try; anything else is left untouched.
    """
    name = manifest["metadata"]["name"]
    kind = resource.kind

    @api_retry
    def call(
        method: str, url: str, query: list[tuple[str, Any]] | None = None, body: Any = None
    ) -> Any:
        return request_sync(api, method, url, query=query, body=body, timeout=timeout, what=where)

    path = resource.path(namespace)
    try:  # the API server validates everything first; nothing is created by a dry run
        call("POST", path, [("dryRun", "All"), ("fieldValidation", "Strict")], manifest)
    except KubeApiError as exc:
        if exc.code == 409:
            pass  # it exists already: adoption below decides
        elif exc.code in (400, 404, 422):
            raise InvalidInputError(
                f"The cluster rejected {where}: {exc.status.get('message') or exc}. "
                f"Fix the {kind} manifest or the operator arguments; nothing was created."
            ) from exc
        else:
            raise
    try:
        created = call("POST", path, None, manifest)
        log.info("Created %s (uid %s).", where, created["metadata"]["uid"])
        return dict(created)
    except KubeApiError as exc:
        if exc.code != 409:
            raise
    existing = call("GET", resource.path(namespace, name))
    meta = existing["metadata"]
    if not matches_task(meta.get("labels"), meta.get("annotations"), key):
        raise InvalidInputError(
            f"{where} already exists but was not created by this task instance try "
            f"({key.dag_id}.{key.task_id}, run {key.run_id}, try {key.try_number}). "
            "Delete it or change the task; it was left untouched."
        )
    log.info("Re-attached to %s created earlier by this same try (uid %s).", where, meta["uid"])
    return dict(existing)


def list_pods(api: Any, namespace: str, selector: str, timeout: float, what: str) -> list[Any]:
    """The pods matching a label selector, oldest first."""
    body = request_sync(
        api,
        "GET",
        PODS.path(namespace),
        query=[("labelSelector", selector)],
        timeout=timeout,
        what=f"listing the pods of {what}",
    )
    pods = list(body.get("items") or [])
    return sorted(
        pods, key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"])
    )


def read_pod_log(
    api: Any, namespace: str, pod_name: str, where: str, container: str | None = None
) -> str:
    """The log of one pod (at most 4 MiB), or a note saying why there is none."""
    query: list[tuple[str, Any]] = [("limitBytes", 4 * 1024 * 1024)]
    if container:
        query.append(("container", container))
    try:
        text = request_sync(
            api,
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
