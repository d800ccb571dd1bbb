"""Airflow's "Test connection" for :class:`~airflow_k8s_jobs.clusters.hook.KubeClusterHook`.

Reaches the API server (``GET /version``), then asks it with ``SelfSubjectAccessReview``
requests what this identity may do in the connection's namespaces, and says it in one message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import kubernetes
import yaml

from airflow_k8s_jobs.errors import (
    KubeApiError,
    KubeJobsError,
    NotFound,
    PermanentApiError,
    TransientError,
    Unauthorized,
)
from airflow_k8s_jobs.kube import request_sync

from .settings import ClusterSettings

if TYPE_CHECKING:
    from .hook import KubeClusterHook

_TEST_REQUEST_TIMEOUT = 10.0
"""Seconds per request while testing a connection (less when the connection sets less)."""

_ARGO_API = "argoproj.io/v1alpha1"
_KUEUE_API = "kueue.x-k8s.io/v1beta1"
_REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
_REJECTED = (
    "rejected this identity's credentials (401 Unauthorized): check the connection's "
    "kubeconfig user, the service account's token or the Google credentials."
)


@dataclass(frozen=True)
class _Right:
    """Verbs on one resource that an operator needs, and why."""

    group: str
    resource: str
    """The plural, or ``plural/subresource``."""
    verbs: tuple[str, ...]
    needed_by: str

    @property
    def shown(self) -> str:
        """``jobs.batch``, ``pods/log``: how the API server names it."""
        plural, _, sub = self.resource.partition("/")
        qualified = f"{plural}.{self.group}" if self.group else plural
        return f"{qualified}/{sub}" if sub else qualified


_JOB_RIGHTS = (
    _Right(
        "batch", "jobs", ("create", "get", "list", "watch", "delete"), "needed by KubeJobOperator"
    ),
    _Right("", "pods", ("get", "list", "watch"), "needed to follow a Job's pods"),
    _Right("", "pods/log", ("get",), "needed to copy pod logs into the task log"),
    _Right("", "events", ("list", "watch"), "needed to say why pods wait for capacity"),
)
_WORKFLOW_RIGHTS = _Right(
    "argoproj.io",
    "workflows",
    ("create", "get", "list", "watch", "patch"),
    "needed by ArgoWorkflowOperator",
)
_WORKLOAD_RIGHTS = _Right(
    "kueue.x-k8s.io",
    "workloads",
    ("list", "watch"),
    "needed to say why a Job sent to a Kueue queue waits",
)
_TEMPLATE_RIGHTS = _Right(
    "argoproj.io",
    "workflowtemplates",
    ("get", "list"),
    "needed by ArgoWorkflowOperator(workflow_template=...)",
)


def _allowed(client: Any, namespace: str, right: _Right, verb: str, timeout: float) -> bool:
    """Ask the API server whether this identity may ``verb`` ``right`` in ``namespace``."""
    plural, _, sub = right.resource.partition("/")
    review = kubernetes.client.V1SelfSubjectAccessReview(
        api_version="authorization.k8s.io/v1",
        kind="SelfSubjectAccessReview",
        spec=kubernetes.client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=kubernetes.client.V1ResourceAttributes(
                namespace=namespace,
                verb=verb,
                group=right.group,
                resource=plural,
                subresource=sub or None,
            )
        ),
    )
    answer = request_sync(
        client,
        "POST",
        _REVIEWS,
        body=client.sanitize_for_serialization(review),
        timeout=timeout,
        what="SelfSubjectAccessReview",
    )
    status = answer.get("status") if isinstance(answer, dict) else None
    return isinstance(status, dict) and status.get("allowed") is True


def _missing_verbs(client: Any, namespace: str, right: _Right, timeout: float) -> list[str]:
    return [verb for verb in right.verbs if not _allowed(client, namespace, right, verb, timeout)]


def _cannot(right: _Right, verbs: list[str]) -> str:
    return f"cannot {_and(verbs)} {right.shown} ({right.needed_by})"


def _namespace_rights(
    client: Any, namespace: str, argo: bool | None, kueue: bool, timeout: float
) -> tuple[bool, str]:
    """Whether Jobs (and Workflows, safely) can run in ``namespace``, and what is missing."""
    missing = [(r, v) for r in _JOB_RIGHTS if (v := _missing_verbs(client, namespace, r, timeout))]
    if missing:
        clause = f"in namespace {namespace} this identity cannot run Jobs: " + "; ".join(
            _cannot(right, verbs) for right, verbs in missing
        )
    else:
        clause = f"in namespace {namespace} this identity can run Jobs"
    if kueue and (workloads := _missing_verbs(client, namespace, _WORKLOAD_RIGHTS, timeout)):
        # Jobs without queue_name do not need it: reported, not failed.
        clause += "; " + _cannot(_WORKLOAD_RIGHTS, workloads)
    if argo is False:
        return not missing, clause
    workflows = _missing_verbs(client, namespace, _WORKFLOW_RIGHTS, timeout)
    templates = _missing_verbs(client, namespace, _TEMPLATE_RIGHTS, timeout)
    if not workflows and not templates:
        clause += " and Argo Workflows" if not missing else "; can run Argo Workflows"
        return not missing, clause
    # Submitting Workflows that cannot be followed or stopped is worse than not submitting.
    unsafe = bool(workflows) and "create" not in workflows
    notes = []
    if workflows:
        note = _cannot(_WORKFLOW_RIGHTS, workflows)
        if unsafe:
            note += ", so ArgoWorkflowOperator would submit Workflows it cannot wait for or stop"
        notes.append(note)
    if templates:
        notes.append(_cannot(_TEMPLATE_RIGHTS, templates))
    return not missing and not unsafe, "; ".join([clause, *notes])


def _served(client: Any, api: str, plural: str, timeout: float) -> bool | None:
    """Whether the cluster serves ``plural`` in ``api``; None when discovery did not say."""
    try:
        resources = request_sync(
            client, "GET", f"/apis/{api}", timeout=timeout, what=f"GET /apis/{api}"
        )
    except Unauthorized:
        raise
    except NotFound:
        return False
    except PermanentApiError:
        return None
    if not isinstance(resources, dict):
        return None
    return any(r.get("name") == plural for r in resources.get("resources") or [])


def _probe_jobs(
    client: Any, namespaces: list[str], timeout: float, refusal: KubeApiError
) -> tuple[bool, str]:
    """Stand-in for the reviews when the API server refuses them: can Jobs be listed?"""
    clauses = [
        "the API server would not say what this identity may do (SelfSubjectAccessReview: "
        f"{_api_message(refusal)}), so only listing Jobs was tried"
    ]
    ok = True
    for namespace in namespaces:
        try:
            request_sync(
                client,
                "GET",
                f"/apis/batch/v1/namespaces/{namespace}/jobs",
                query=[("limit", 1)],
                timeout=timeout,
                what="listing Jobs",
            )
        except Unauthorized:
            raise
        except PermanentApiError as exc:
            ok = False
            clauses.append(f"in namespace {namespace} it cannot list Jobs: {_api_message(exc)}")
            continue
        clauses.append(f"in namespace {namespace} it can list Jobs")
    return ok, "; ".join(clauses)


def _server_version(version: Any) -> str:
    if isinstance(version, dict):
        if version.get("gitVersion"):
            return f"Kubernetes {version['gitVersion']}"
        if version.get("major"):
            return f"Kubernetes {version['major']}.{version.get('minor', '')}"
    return "version unknown"


def _api_message(exc: KubeApiError) -> str:
    message = exc.status.get("message") or str(exc)
    return f"{message} (HTTP {exc.code})" if exc.status.get("message") else message


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>:\s*")


def _describe_error(exc: BaseException) -> str:
    """One line about ``exc`` for a person, never echoing a kubeconfig's text."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return f"the kubeconfig is not valid YAML ({exc.problem or 'unreadable'}{at})"
    if isinstance(exc, yaml.YAMLError):
        return "the kubeconfig is not valid YAML"
    if isinstance(exc, TransientError) and exc.__cause__ is not None:
        # urllib3: MaxRetryError(reason=NewConnectionError(...)) → its reason, without the repr
        cause = exc.__cause__
        exc = getattr(cause, "reason", None) or cause
    text = _OBJECT_REPR.sub("", str(exc)).strip()
    text = text.splitlines()[0][:400] if text else ""
    if isinstance(exc, KubeJobsError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def test_connection(hook: KubeClusterHook) -> tuple[bool, str]:
    """What :meth:`KubeClusterHook.test_connection` answers (see its docstring)."""
    try:
        return _test(hook)
    except Exception as exc:  # shown in the UI: a message, never a traceback
        return False, (
            f"Testing connection {hook.cluster_conn_id!r} failed: {_describe_error(exc)}"
        )


def _test(hook: KubeClusterHook) -> tuple[bool, str]:
    try:
        settings = hook.settings
    except Exception as exc:
        return False, _describe_error(exc)
    name = settings.display_name
    try:
        client = hook.api_client()
    except Exception as exc:
        if isinstance(exc, KubeJobsError):
            return False, str(exc)
        return False, (
            f"Cannot load {name} for connection {settings.conn_id!r}: "
            f"{_describe_error(exc)}. Check the connection's kubeconfig / context settings."
        )
    timeout = min(settings.request_timeout, _TEST_REQUEST_TIMEOUT)
    where = f"{name} at {client.configuration.host}"
    try:
        version = request_sync(client, "GET", "/version", timeout=timeout, what="GET /version")
    except Unauthorized:
        return False, f"{where} {_REJECTED}"
    except PermanentApiError as exc:
        return False, f"{where} answered GET /version with an error: {_api_message(exc)}."
    except Exception as exc:
        return False, f"Cannot reach {where}: {_describe_error(exc)}."
    head = f"Connected to {name} ({_server_version(version)})"
    try:
        ok, details = _check_rights(client, settings, timeout)
    except Unauthorized:
        return False, f"{head}, but it {_REJECTED}"
    except Exception as exc:
        return False, f"{head}, but checking permissions failed: {_describe_error(exc)}."
    return ok, f"{head}; {details}"


def _check_rights(
    client: kubernetes.client.ApiClient, settings: ClusterSettings, timeout: float
) -> tuple[bool, str]:
    namespaces = list(dict.fromkeys([settings.default_namespace, *settings.allowed_namespaces]))
    argo = _served(client, _ARGO_API, "workflows", timeout)
    kueue = _served(client, _KUEUE_API, "workloads", timeout) is True
    clauses = []
    ok = True
    try:
        for namespace in namespaces:
            namespace_ok, clause = _namespace_rights(client, namespace, argo, kueue, timeout)
            ok = ok and namespace_ok
            clauses.append(clause)
    except Unauthorized:
        raise
    except PermanentApiError as exc:  # the API server would not review: list Jobs instead
        return _probe_jobs(client, namespaces, timeout, exc)
    if argo is False:
        clauses.append(f"Argo Workflows is not installed (no {_ARGO_API} API)")
    message = "; ".join(clauses)
    if not ok:
        message += (
            ". Grant the missing rights to this identity (a Role and RoleBinding in each "
            "namespace, as in the provider's docs/rbac/airflow-k8s-jobs.yaml; on GKE, IAM "
            "rights as well)"
        )
    return ok, message
