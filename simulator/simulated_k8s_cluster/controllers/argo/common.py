"""What the execution modules share: errors, the host protocol, template contexts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from ...state import ClusterState
from .config import ArgoSettings

Obj = dict[str, Any]

DEADLINE_EXCEEDED = "Step exceeded its deadline"
TRANSIENT = re.compile(
    r"connection refused|connection reset|i/o timeout|TLS handshake timeout|exceeded quota"
    r"|etcdserver|too many requests|ServiceUnavailable|InternalError",
    re.IGNORECASE,
)


class ParallelismReached(Exception):
    """``ErrParallelismReached``: not now, try again on a later pass."""


class ExecError(Exception):
    """An error ``executeTemplate`` returns; ``node`` is the node it marked (if any)."""

    def __init__(self, message: str, node: Obj | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.node = node


class Host(Protocol):
    """What an operation needs from the controller."""

    state: ClusterState
    settings: ArgoSettings
    resource_objects: dict[str, tuple[str, str, str, str, str]]
    """Node id → (apiVersion, kind, namespace, name, error) a resource template acted on."""

    def files(self, pod: Obj) -> dict[str, str]: ...

    def stdout(self, pod: Obj) -> str: ...

    def find_template(self, namespace: str, name: str, cluster: bool) -> Obj | None: ...


@dataclass
class TemplateContext:
    """Where template names resolve: the Workflow's templates or a (Cluster)WorkflowTemplate's."""

    templates: dict[str, Obj]
    scope: str
    """``local/<wf>``, ``namespaced/<template>`` or ``cluster/<template>``."""


def template_type(tmpl: Obj) -> str:
    for kind in ("container", "steps", "dag", "suspend", "script", "resource", "containerSet"):
        if tmpl.get(kind) is not None:
            return kind
    for kind in ("http", "plugin", "data"):
        if tmpl.get(kind) is not None:
            return kind
    return ""


def holder_template_name(holder: Obj) -> str:
    return str(holder.get("template") or "")
