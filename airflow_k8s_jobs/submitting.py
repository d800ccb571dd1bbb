"""What the worker asks the API server for around one submission: create the object or re-attach
to it, list an earlier try's objects, read a WorkflowTemplate, stop a Workflow. Every request
follows :data:`~airflow_k8s_jobs.retrying.API_RETRY`; what the answers mean is decided in
:mod:`~airflow_k8s_jobs.status` and :mod:`~airflow_k8s_jobs.manifests`. The pods' logs are
:mod:`airflow_k8s_jobs.pod_logs`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .clusters.preflight import check_local_queue, refusal
from .errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Invalid,
    InvalidInputError,
    NotFound,
    PermanentApiError,
    UnreachableError,
)
from .kube import (
    CLUSTER_WORKFLOW_TEMPLATES,
    MERGE_PATCH,
    WORKFLOW_TEMPLATES,
    WORKFLOWS,
    Resource,
    request_sync,
)
from .manifests.arguments import TemplateRef
from .manifests.names import TaskInstanceKey, matches_task, task_selector
from .manifests.workflows import shutdown_patch
from .retrying import API_RETRY
from .status.outcome import same_object
from .status.workflows import workflow_finished

Request = Callable[..., Any]
"""``request(method, path, *, what, **kwargs)``: one API request, following the retry policy."""


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
    refresh: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Create ``manifest`` after a server-side dry run, or re-attach to the object this same try
    created before (a worker that died between submitting and deferring).

    The dry run (``fieldValidation=Strict``) lets the API server reject bad input before anything
    exists. On ``409 AlreadyExists`` the existing object is adopted only if its labels say it was
    created by exactly this task instance try; anything else is left untouched. Each request
    follows :data:`~airflow_k8s_jobs.retrying.API_RETRY` (``refresh`` reloads the credentials
    after a 401).
    """
    name = manifest["metadata"]["name"]
    kind = resource.kind

    def call(
        method: str, url: str, query: list[tuple[str, Any]] | None = None, body: Any = None
    ) -> Any:
        return API_RETRY.call(
            lambda: request_sync(
                api, method, url, query=query, body=body, timeout=timeout, what=where
            ),
            refresh=refresh,
        )

    path = resource.path(namespace)
    try:  # the API server validates everything first; nothing is created by a dry run
        check_local_queue(call, manifest, namespace, where)
        call("POST", path, [("dryRun", "All"), ("fieldValidation", "Strict")], manifest)
    except Conflict:
        pass  # it exists already: adoption below decides
    except (Forbidden, NotFound, UnreachableError) as exc:
        refusal(exc, kind, resource, namespace, where)
        raise
    except (BadRequest, Invalid) as exc:
        raise InvalidInputError(
            f"The cluster rejected {where}: {exc.api_message}. "
            f"Fix the {kind} manifest or the operator arguments; nothing was created."
        ) from exc
    try:
        created = call("POST", path, None, manifest)
        log.info("Created %s (uid %s).", where, created["metadata"]["uid"])
        return dict(created)
    except Conflict:
        pass
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


def list_tries(
    request: Request, resource: Resource, namespace: str, key: TaskInstanceKey
) -> list[dict[str, Any]]:
    """The task instance's objects of every try (their labels say which)."""
    found = request(
        "GET",
        resource.path(namespace),
        query=[("labelSelector", task_selector(key, include_try=False))],
        what=f"listing the {resource.plural} of earlier tries in namespace {namespace}",
    )
    return list(found.get("items") or [])


def read_workflow_template(request: Request, ref: TemplateRef) -> dict[str, Any]:
    """The (Cluster)WorkflowTemplate ``ref`` names, read to check the parameters.

    Raises :class:`InvalidInputError` when it cannot be read or does not exist (naming those
    that do)."""
    resource = WORKFLOW_TEMPLATES if ref.namespace else CLUSTER_WORKFLOW_TEMPLATES
    what = f"reading {ref.what}"
    try:
        return dict(request("GET", resource.path(ref.namespace, ref.name), what=what))
    except NotFound:
        pass
    except PermanentApiError as exc:
        raise ref.unreadable(exc, resource.plural) from exc
    try:
        items = request("GET", resource.path(ref.namespace), what=what)["items"]
    except PermanentApiError:
        items = []
    raise ref.not_found([o["metadata"]["name"] for o in items])


def stop_workflow(
    request: Request,
    log: logging.Logger | Any,
    namespace: str,
    name: str,
    uid: str,
    where: str,
    strategy: str,
) -> bool:
    """Set ``spec.shutdown`` to ``strategy`` on the Workflow, if it is still the one of ``uid``
    and still running; False when it was gone, replaced or finished."""
    path = WORKFLOWS.path(namespace, name)
    try:
        current = same_object(dict(request("GET", path, what=f"reading {where}")), uid)
        if current is None or workflow_finished(current):
            return False
        patch, what = shutdown_patch(strategy), f"stopping {where}"
        request("PATCH", path, what=what, body=patch, content_type=MERGE_PATCH)
    except NotFound:
        return False
    log.info("Asked the Argo controller to stop %s (%s).", where, strategy)
    return True
