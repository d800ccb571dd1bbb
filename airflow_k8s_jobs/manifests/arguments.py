"""Operator arguments checked and turned into what the operators send, without I/O: the Job
spec request, the Workflow template a submission names (and what to say when it cannot be read),
the shutdown strategy, the scheduled time of a run, and the options of a deletion."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar

from ..errors import InvalidInputError
from .jobs import JobSpecRequest
from .workflows import SHUTDOWN_STRATEGIES, WorkflowRequest

SCHEDULED_TIME_KEYS = ("data_interval_end", "logical_date")
"""Where in a task's context the run's scheduled time is read, the first present first."""


_R = TypeVar("_R", JobSpecRequest, WorkflowRequest)


def request_from(kind: type[_R], arguments: object, **given: Any) -> _R:
    """A :class:`JobSpecRequest` or :class:`WorkflowRequest` whose fields are ``given``, or else
    the attributes of the same names of ``arguments`` (the operator)."""
    values = {f.name: getattr(arguments, f.name) for f in fields(kind) if f.name not in given}
    return kind(**values, **given)


def delete_options(uid: str, propagation_policy: str) -> dict[str, Any]:
    """The body of a DELETE that removes the object only if it still has ``uid`` (not another
    created under the same name meanwhile), its dependents as ``propagation_policy`` says."""
    return {"propagationPolicy": propagation_policy, "preconditions": {"uid": uid}}


def check_shutdown_on_kill(value: str | None, where: str) -> None:
    """Raise :class:`InvalidInputError` unless ``value`` is a shutdown strategy or None."""
    if value is not None and value not in SHUTDOWN_STRATEGIES:
        raise InvalidInputError(
            f"{where}: shutdown_on_kill must be one of {', '.join(SHUTDOWN_STRATEGIES)} or None, "
            f"got {value!r}"
        )


def scheduled_time(context: Mapping[str, Any]) -> datetime | None:
    """The run's scheduled time: the end of its data interval, else its logical date."""
    for key in SCHEDULED_TIME_KEYS:
        value = context.get(key)
        if isinstance(value, datetime):
            return value
    return None


@dataclass(frozen=True)
class TemplateRef:
    """The WorkflowTemplate (``namespace`` set) or ClusterWorkflowTemplate a submission names.

    ``what`` names it in messages (with the cluster)."""

    name: str
    namespace: str | None
    what: str

    @property
    def argument(self) -> str:
        """The operator argument that names it."""
        return "workflow_template" if self.namespace else "cluster_workflow_template"

    def unreadable(self, error: Exception, plural: str) -> InvalidInputError:
        """The error for a template the connection may not read (``plural``: its resource)."""
        return InvalidInputError(
            f"Cannot read {self.what} to check the parameters: {error}. Grant the connection's "
            f"identity 'get' and 'list' on {plural}.argoproj.io; nothing was created."
        )

    def not_found(self, existing: Sequence[str]) -> InvalidInputError:
        """The error for a template that does not exist (``existing``: those that do)."""
        known = f"; there are: {', '.join(sorted(existing))}" if existing else "; there are none"
        return InvalidInputError(
            f"{self.what} not found{known}. Create it (argo template create / kubectl apply) or "
            f"fix the task's {self.argument}; nothing was created."
        )


def template_ref(
    where: str,
    workflow_template: str | None,
    cluster_workflow_template: str | None,
    namespace: str,
    cluster: str,
) -> TemplateRef | None:
    """The template named by the operator's arguments (None: neither); both is bad input."""
    if workflow_template and cluster_workflow_template:
        raise InvalidInputError(
            f"{where}: give workflow_template or cluster_workflow_template, not both; nothing "
            "was created"
        )
    if workflow_template:
        what = f"WorkflowTemplate {namespace}/{workflow_template} on {cluster}"
        return TemplateRef(workflow_template, namespace, what)
    if cluster_workflow_template:
        name = str(cluster_workflow_template)
        return TemplateRef(name, None, f"ClusterWorkflowTemplate {name} on {cluster}")
    return None
