"""What is checked on the cluster before an object is created, and how a refusal of the server
(or no answer at all) is told: as :class:`~airflow_k8s_jobs.errors.InvalidInputError` naming the
object, the namespace, the cluster and what to do.

- A Job for a Kueue ``LocalQueue`` (label ``kueue.x-k8s.io/queue-name``): the queue must exist
  (``GET``); otherwise Kueue never admits the Job and the task would wait for nothing.
- The dry run's ``404`` for the namespace, ``403`` (RBAC), no connection to the API server after
  the retries: the same input fails the same way on every try.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import Forbidden, InvalidInputError, NotFound, UnreachableError
from ..kube import Resource

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
LOCAL_QUEUES = Resource("kueue.x-k8s.io", "v1beta1", "localqueues", "LocalQueue")

Call = Callable[[str, str], Any]
"""``call(method, path)``: one API request (with the retry policy)."""


def check_local_queue(call: Call, manifest: dict[str, Any], namespace: str, where: str) -> None:
    """Raise :class:`InvalidInputError` if the Job names a LocalQueue that does not exist.

    A connection that may not read LocalQueues (403) is not checked.
    """
    labels = (manifest.get("metadata") or {}).get("labels") or {}
    queue = labels.get(QUEUE_LABEL)
    if not queue:
        return
    try:
        call("GET", LOCAL_QUEUES.path(namespace, queue))
    except Forbidden:
        return
    except NotFound as exc:
        details = exc.status.get("details") or {}
        if details.get("kind") == "localqueues" or details.get("name") == queue:
            raise InvalidInputError(
                f"{where}: the Kueue LocalQueue {namespace}/{queue} does not exist, so Kueue "
                f"would never admit the Job. Pass queue_name= a LocalQueue of namespace "
                f"{namespace} (kubectl get localqueues -n {namespace}) or create it; nothing "
                "was created."
            ) from None
        raise InvalidInputError(
            f"{where}: the cluster does not serve Kueue LocalQueues ({exc.api_message}); install "
            f"Kueue or remove queue_name / the {QUEUE_LABEL} label; nothing was created."
        ) from None


def refusal(exc: Exception, kind: str, resource: Resource, namespace: str, where: str) -> None:
    """Raise :class:`InvalidInputError` for a dry run (or a check before it) that the cluster
    refused for good, or that could not reach the cluster at all; return for anything else."""
    if isinstance(exc, Forbidden):
        raise InvalidInputError(
            f"{where}: forbidden: {exc.api_message}. Grant the connection's identity the "
            f"'create' verb on {resource.plural} (API group {resource.group or 'core'!r}) in "
            f"namespace {namespace} (a Role and RoleBinding), or use a connection that has it; "
            "nothing was created."
        ) from exc
    if isinstance(exc, NotFound):
        details = exc.status.get("details") or {}
        if details.get("kind") == "namespaces" or f'namespaces "{namespace}"' in exc.api_message:
            raise InvalidInputError(
                f"{where}: namespace {namespace} does not exist on the cluster. Pass namespace= "
                "an existing namespace (or set the connection's namespace), or create it; "
                "nothing was created."
            ) from exc
        raise InvalidInputError(
            f"{where}: the cluster does not serve {resource.plural}.{resource.group or 'core'} "
            f"({exc.api_message}); install what provides the {kind} kind, or use another "
            "cluster; nothing was created."
        ) from exc
    if isinstance(exc, UnreachableError):
        raise InvalidInputError(
            f"{exc} (after retrying). Fix the connection, or run the task again once the API "
            "server is back; nothing was created."
        ) from exc
