"""The resource types the simulated API server serves, and the Kubernetes ``Status`` errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ResourceType:
    """One REST resource: where it lives in the API and what it supports."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str
    short_names: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()
    field_labels: tuple[str, ...] = ()
    """Field-selector labels beyond ``metadata.name`` / ``metadata.namespace``."""
    default_propagation: str = "Background"
    """What a DELETE without ``propagationPolicy`` does (batch/v1 Jobs orphan their pods)."""
    categories: tuple[str, ...] = ()
    custom: bool = False
    """A custom resource (no strategic merge patch, schemaless here)."""
    verbs: tuple[str, ...] = ()
    """The verbs discovery lists; empty means every ordinary verb (create … watch)."""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``jobs.batch`` / ``pods``: how the API server names it in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        """``Job.batch`` / ``Pod``: how validation messages name it."""
        return f"{self.kind}.{self.group}" if self.group else self.kind


def _core(plural: str, kind: str, namespaced: bool = True, **kw: Any) -> ResourceType:
    return ResourceType("", "v1", plural, kind, namespaced, kind.lower(), **kw)


NAMESPACES = _core(
    "namespaces",
    "Namespace",
    namespaced=False,
    short_names=("ns",),
    subresources=frozenset({"status"}),
    field_labels=("status.phase",),
)
NODES = _core(
    "nodes",
    "Node",
    namespaced=False,
    short_names=("no",),
    subresources=frozenset({"status"}),
    field_labels=("spec.unschedulable",),
)
PODS = _core(
    "pods",
    "Pod",
    short_names=("po",),
    subresources=frozenset({"status", "log"}),
    field_labels=(
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    categories=("all",),
)
EVENTS = _core(
    "events",
    "Event",
    short_names=("ev",),
    field_labels=(
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
)
CONFIGMAPS = _core("configmaps", "ConfigMap", short_names=("cm",))
SECRETS = _core("secrets", "Secret", field_labels=("type",))
SERVICEACCOUNTS = _core("serviceaccounts", "ServiceAccount", short_names=("sa",))
JOBS = ResourceType(
    "batch",
    "v1",
    "jobs",
    "Job",
    True,
    "job",
    subresources=frozenset({"status"}),
    field_labels=("status.successful",),
    default_propagation="Orphan",
    categories=("all",),
)
CRONJOBS = ResourceType(
    "batch",
    "v1",
    "cronjobs",
    "CronJob",
    True,
    "cronjob",
    short_names=("cj",),
    subresources=frozenset({"status"}),
    categories=("all",),
)

SELF_SUBJECT_ACCESS_REVIEWS = ResourceType(
    "authorization.k8s.io",
    "v1",
    "selfsubjectaccessreviews",
    "SelfSubjectAccessReview",
    False,
    "selfsubjectaccessreview",
    verbs=("create",),
)
"""Create-only and never stored: the answer says whether the caller may do something."""

BUILTIN_RESOURCES: tuple[ResourceType, ...] = (
    NAMESPACES,
    NODES,
    PODS,
    EVENTS,
    CONFIGMAPS,
    SECRETS,
    SERVICEACCOUNTS,
    CRONJOBS,
    JOBS,
    SELF_SUBJECT_ACCESS_REVIEWS,
)


def _kueue(plural: str, kind: str, namespaced: bool, short_names: tuple[str, ...]) -> ResourceType:
    return ResourceType(
        "kueue.x-k8s.io",
        "v1beta1",
        plural,
        kind,
        namespaced,
        kind.lower(),
        short_names=short_names,
        subresources=frozenset({"status"}),
        custom=True,
    )


# Kueue's custom resources, served only when the cluster is configured with a ``kueue`` section.
RESOURCE_FLAVORS = _kueue("resourceflavors", "ResourceFlavor", False, ("flavor", "flavors", "rf"))
CLUSTER_QUEUES = _kueue("clusterqueues", "ClusterQueue", False, ("cq",))
LOCAL_QUEUES = _kueue("localqueues", "LocalQueue", True, ("queue", "queues", "lq"))
WORKLOADS = _kueue("workloads", "Workload", True, ("wl",))
KUEUE_RESOURCES: tuple[ResourceType, ...] = (
    RESOURCE_FLAVORS,
    CLUSTER_QUEUES,
    LOCAL_QUEUES,
    WORKLOADS,
)


def _argo(plural: str, kind: str, namespaced: bool, short_names: tuple[str, ...]) -> ResourceType:
    return ResourceType(
        "argoproj.io",
        "v1alpha1",
        plural,
        kind,
        namespaced,
        kind.lower(),
        short_names=short_names,
        custom=True,
    )


# Argo Workflows' custom resources, served only when the cluster has an ``argo`` section. The
# Workflow CRD has no status subresource: the controller writes the status with the object.
ARGO_WORKFLOWS = _argo("workflows", "Workflow", True, ("wf",))
ARGO_WORKFLOW_TEMPLATES = _argo("workflowtemplates", "WorkflowTemplate", True, ("wftmpl",))
ARGO_CLUSTER_WORKFLOW_TEMPLATES = _argo(
    "clusterworkflowtemplates", "ClusterWorkflowTemplate", False, ("cwftmpl", "cwft")
)
ARGO_RESOURCES: tuple[ResourceType, ...] = (
    ARGO_WORKFLOWS,
    ARGO_WORKFLOW_TEMPLATES,
    ARGO_CLUSTER_WORKFLOW_TEMPLATES,
)


@dataclass
class ResourceRegistry:
    """Every resource type served, looked up by (group, version, plural)."""

    types: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)

    def add(self, resource: ResourceType) -> None:
        self.types[(resource.group, resource.version, resource.plural)] = resource

    def find(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self.types.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        for resource in self.types.values():
            if resource.api_version == api_version and resource.kind == kind:
                return resource
        return None

    def groups(self) -> dict[str, list[str]]:
        """Group name → served versions (core group under "")."""
        out: dict[str, list[str]] = {}
        for group, version, _ in self.types:
            versions = out.setdefault(group, [])
            if version not in versions:
                versions.append(version)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [r for (g, v, _), r in self.types.items() if g == group and v == version]


def default_registry() -> ResourceRegistry:
    registry = ResourceRegistry()
    for resource in BUILTIN_RESOURCES:
        registry.add(resource)
    return registry


# --- errors -------------------------------------------------------------------------------------

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """An error the simulated API server answers with: a ``Status`` object and an HTTP code."""

    def __init__(
        self,
        code: int,
        message: str,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or _REASONS.get(code, "Unknown")
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def not_found(resource: ResourceType, name: str) -> ApiError:
    return ApiError(
        404,
        f'{resource.group_resource} "{name}" not found',
        details={"name": name, "group": resource.group, "kind": resource.plural},
    )


def namespace_not_found(namespace: str) -> ApiError:
    return ApiError(
        404,
        f'namespaces "{namespace}" not found',
        details={"name": namespace, "kind": "namespaces"},
    )


def already_exists(resource: ResourceType, name: str) -> ApiError:
    return ApiError(
        409,
        f'{resource.group_resource} "{name}" already exists',
        reason="AlreadyExists",
        details={"name": name, "group": resource.group, "kind": resource.plural},
    )


def conflict(resource: ResourceType, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {resource.group_resource} "{name}": {why}',
        reason="Conflict",
        details={"name": name, "group": resource.group, "kind": resource.plural},
    )


@dataclass(frozen=True)
class FieldError:
    """One ``details.causes`` entry of a 422 ``Invalid``."""

    field: str
    kind: str
    """Required | Invalid | NotSupported | Forbidden | Duplicate | TooLong | TooMany."""
    detail: str = ""
    value: Any = None

    _CAUSE = {
        "Required": "FieldValueRequired",
        "Invalid": "FieldValueInvalid",
        "NotSupported": "FieldValueNotSupported",
        "Forbidden": "FieldValueForbidden",
        "Duplicate": "FieldValueDuplicate",
        "TooLong": "FieldValueTooLong",
        "TooMany": "FieldValueTooMany",
    }

    def message(self) -> str:
        if self.kind == "Required":
            text = "Required value"
        elif self.kind == "Forbidden":
            text = "Forbidden"
        elif self.kind == "Duplicate":
            text = f"Duplicate value: {_go_repr(self.value)}"
        elif self.kind == "NotSupported":
            text = f"Unsupported value: {_go_repr(self.value)}"
        elif self.kind == "TooLong":
            text = "Too long"
        else:
            text = f"Invalid value: {_go_repr(self.value)}"
        return f"{text}: {self.detail}" if self.detail else text

    def cause(self) -> dict[str, str]:
        return {
            "reason": self._CAUSE.get(self.kind, "FieldValueInvalid"),
            "message": self.message(),
            "field": self.field,
        }


def _go_repr(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def invalid(resource: ResourceType, name: str, errors: list[FieldError]) -> ApiError:
    """A 422 ``Invalid`` naming every field error, as the API server words it."""
    summary = ", ".join(f"{e.field}: {e.message()}" for e in errors)
    if len(errors) > 1:
        summary = f"[{summary}]"
    return ApiError(
        422,
        f'{resource.qualified_kind} "{name}" is invalid: {summary}',
        reason="Invalid",
        details={
            "name": name,
            "group": resource.group,
            "kind": resource.kind,
            "causes": [e.cause() for e in errors],
        },
    )
