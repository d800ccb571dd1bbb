"""Load, build, default and validate the Argo ``Workflow`` a task submits.

Pure: no Airflow, no cluster — only :func:`load_workflow` reads a file. Everything wrong with the
input is reported at once, before anything is created, as an
:class:`~airflow_k8s_jobs.errors.InvalidInputError` naming the Workflow, its namespace and the
cluster.

What :func:`build_workflow` does, in order:

1. **The source**: exactly one of a ``workflow`` manifest, a ``workflow_template`` name or a
   ``cluster_workflow_template`` name.
2. **Identity**: ``metadata.name`` is always :func:`~.names.object_name` of the task instance try;
   a manifest's own ``name``/``generateName`` is replaced. The deterministic name is what makes a
   worker that died after submitting re-attach to its Workflow (``409 AlreadyExists``) and an
   Airflow retry submit a fresh one. Labels are the manifest's, then ``labels=``, then the identity
   labels (:func:`~.names.task_labels`), which always win; annotations likewise
   (:func:`~.names.task_annotations`). ``scheduled_time`` sets
   :data:`SCHEDULED_TIME_ANNOTATION` (RFC 3339, UTC, whole seconds; a naive datetime is taken as
   UTC), replacing a value the manifest has: the task's data interval is the authority, and it is
   what ``{{workflow.scheduledTime}}`` then gives. What the API server and the workflow
   controller wrote (``uid``, ``resourceVersion``, ``managedFields``, ``status``, the
   ``completed``/``phase`` labels, …) is dropped, so a Workflow exported with
   ``kubectl get -o yaml`` can be submitted again.
3. **From a template**: like ``argo submit --from workflowtemplate/<name>``, the Workflow is
   ``spec.workflowTemplateRef: {name}`` (``clusterScope: true`` for a ClusterWorkflowTemplate)
   plus ``spec.arguments.parameters`` for the given parameters and ``spec.entrypoint`` when
   ``entrypoint=`` is given, labelled :data:`WORKFLOW_TEMPLATE_LABEL` (or
   :data:`CLUSTER_WORKFLOW_TEMPLATE_LABEL`) with the template's name. When the template object is
   known (``template=``), its ``spec.workflowMetadata`` labels and annotations are copied as the
   Argo CLI does, and parameters and the entrypoint are checked against it.
4. **Parameters** (``argo submit -p``): each replaces the ``value`` of the same-named entry in
   ``spec.arguments.parameters`` and removes its ``valueFrom`` (the Argo CLI rebuilds the entry
   as ``{name, value}``; its ``description`` and ``enum`` are kept here), or is appended. A
   parameter the Workflow (or the known template) does not declare — in
   ``spec.arguments.parameters`` or as an input of the entrypoint template, which Argo fills from
   the workflow arguments by name (:func:`declared_parameters`) — is an error, as is a value
   outside a declared ``enum`` and a declared parameter left without any value. Values are
   converted with :func:`argo_parameter_value`.
5. **Defaults**, only where the manifest (or the known template) sets nothing:
   ``ttlStrategy`` (:data:`DEFAULT_TTL_STRATEGY`), ``podGC`` (:data:`DEFAULT_POD_GC`) and
   ``serviceAccountName`` (``service_account_name=``). Without the template object a template
   submission gets the defaults; the controller merges them over the template's own settings.
6. **Validation** of the result (see :func:`workflow_problems`): the common mistakes that Argo
   would otherwise only report after the task was submitted, worded for the task's author — it
   is not Argo's whole validator.

The request and the given manifest are never modified.

Jinja and Argo both use ``{{ … }}``. :func:`protect_argo_expressions` wraps the Argo expressions
of a manifest's text in ``{% raw %}`` so that Airflow's template rendering leaves them alone while
still rendering ``{{ ds }}`` and friends.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from ..errors import InvalidInputError
from .jobs import load_manifest
from .names import TaskInstanceKey, object_name, task_annotations, task_labels
from .problems import (
    SERVER_METADATA,
    Problems,
    annotation_problems,
    is_int,
    label_problems,
    merged,
    yaml_type,
)
from .validation import (
    did_you_mean,
    dns_label_problem,
    dns_subdomain_problem,
    type_name,
)

__all__ = [
    "ARGO_EXPRESSION_ROOTS",
    "CLUSTER_WORKFLOW_TEMPLATE_LABEL",
    "DEFAULT_POD_GC",
    "DEFAULT_TTL_STRATEGY",
    "SCHEDULED_TIME_ANNOTATION",
    "WORKFLOWS_API_VERSION",
    "WORKFLOW_TEMPLATE_LABEL",
    "WorkflowRequest",
    "argo_parameter_value",
    "build_workflow",
    "declared_parameters",
    "load_workflow",
    "protect_argo_expressions",
    "scheduled_time_value",
    "workflow_problems",
]

Obj = dict[str, Any]

SHUTDOWN_STRATEGIES = ("Terminate", "Stop")
"""``spec.shutdown`` values: ``Terminate`` stops at once; ``Stop`` still runs exit handlers."""


def shutdown_patch(strategy: str) -> dict[str, Any]:
    """The merge patch that asks the Argo controller to stop a Workflow."""
    return {"spec": {"shutdown": strategy}}


WORKFLOWS_API_VERSION = "argoproj.io/v1alpha1"
SCHEDULED_TIME_ANNOTATION = "workflows.argoproj.io/scheduled-time"
WORKFLOW_TEMPLATE_LABEL = "workflows.argoproj.io/workflow-template"
CLUSTER_WORKFLOW_TEMPLATE_LABEL = "workflows.argoproj.io/cluster-workflow-template"
DEFAULT_TTL_STRATEGY: Mapping[str, Any] = {"secondsAfterCompletion": 86400}
"""Finished Workflows are deleted after a day (Argo keeps them forever by default)."""
DEFAULT_POD_GC: Mapping[str, Any] = {"strategy": "OnWorkflowSuccess", "deleteDelayDuration": "5m"}
"""Pods of a successful Workflow go five minutes after it ends; a failed one keeps them (logs)."""

ARGO_EXPRESSION_ROOTS: frozenset[str] = frozenset(
    {
        "inputs",  # inputs.parameters.<name>, inputs.artifacts.<name>
        "outputs",  # outputs.parameters.<name>.path, outputs.result (metrics)
        "item",  # withItems / withParam
        "workflow",  # workflow.name, workflow.parameters.<name>, workflow.status, …
        "steps",  # steps.<step>.outputs.…
        "tasks",  # tasks.<task>.outputs.…
        "pod",  # pod.name
        "node",  # node.name
        "retries",  # the retry number
        "lastRetry",  # retryStrategy.expression: lastRetry.exitCode, .status, .duration, .message
        "status",  # metrics: phase of the template
        "exitCode",  # metrics
        "duration",  # metrics
        "resourcesDuration",  # metrics: resourcesDuration.cpu / .memory
        "request",  # http templates: successCondition
        "response",  # http templates: successCondition
        "cronworkflow",  # CronWorkflow stopStrategy / when expressions
    }
)
"""First identifiers of Argo's simple ``{{…}}`` tags (the Argo "Workflow Variables" reference).
None of them is a name Airflow puts into the template context."""

# Written by the workflow controller; a copied ``completed: "true"`` would make it ignore the
# new Workflow.
_CONTROLLER_LABELS = (
    "workflows.argoproj.io/completed",
    "workflows.argoproj.io/phase",
    "workflows.argoproj.io/workflow-archiving-status",
)
_TEMPLATE_KINDS = ("WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow")
_TEMPLATE_TYPES = (
    "container",
    "containerSet",
    "script",
    "resource",
    "steps",
    "dag",
    "suspend",
    "data",
    "http",
    "plugin",
)
_POD_GC_STRATEGIES = (
    "OnPodCompletion",
    "OnPodSuccess",
    "OnWorkflowCompletion",
    "OnWorkflowSuccess",
)
_TTL_FIELDS = ("secondsAfterCompletion", "secondsAfterSuccess", "secondsAfterFailure")
_FIELD_NAME = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")
_FIELD_NAME_MAX = 128
_PARAMETER_NAME = re.compile(r"^[-a-zA-Z0-9_]+$")
_GO_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")
_DEPENDS_TASK = re.compile(r"[A-Za-z0-9][-A-Za-z0-9]*(?:\.[A-Za-z]+)?")
# Template fields that are not a template type (no "did you mean" for them).
_TEMPLATE_FIELDS = frozenset(
    {
        "name",
        "inputs",
        "outputs",
        "metadata",
        "arguments",
        "retryStrategy",
        "nodeSelector",
        "affinity",
        "tolerations",
        "parallelism",
        "activeDeadlineSeconds",
        "serviceAccountName",
        "volumes",
        "initContainers",
        "sidecars",
        "archiveLocation",
        "podSpecPatch",
        "securityContext",
        "timeout",
        "memoize",
        "synchronization",
        "failFast",
        "priorityClassName",
        "daemon",
        "executor",
        "metrics",
        "schedulerName",
        "archive",
        "hostAliases",
        "automountServiceAccountToken",
    }
)


# --- loading ------------------------------------------------------------------------------------


def load_workflow(source: dict[str, Any] | str | os.PathLike[str], *, where: str = "") -> Obj:
    """One Workflow manifest from a dict (deep-copied), a ``.yaml``/``.yml``/``.json`` file, or
    YAML/JSON text (see :func:`~.jobs.load_manifest`).

    A WorkflowTemplate, ClusterWorkflowTemplate or CronWorkflow is refused with a message saying
    how to run it instead.
    """
    try:
        return load_manifest(
            source,
            expected_kind="Workflow",
            expected_api_version=WORKFLOWS_API_VERSION,
            where=where,
        )
    except InvalidInputError as error:
        kind = _template_kind(source, where)
        if kind is None:
            raise
        raise InvalidInputError(f"{error}. {_template_hint(kind)}") from None


def _template_kind(source: Any, where: str) -> str | None:
    """Which of the template kinds ``source`` is, if it is one (only called on the error path)."""
    if isinstance(source, Mapping):
        kind = source.get("kind")
        return kind if kind in _TEMPLATE_KINDS else None
    for kind in _TEMPLATE_KINDS:
        try:
            load_manifest(
                source, expected_kind=kind, expected_api_version=WORKFLOWS_API_VERSION, where=where
            )
        except InvalidInputError:
            continue
        return kind
    return None


def _template_hint(kind: str) -> str:
    if kind == "WorkflowTemplate":
        return (
            "To run a WorkflowTemplate, create it on the cluster and pass its name as "
            "workflow_template= (with parameters=), or give a Workflow manifest"
        )
    if kind == "ClusterWorkflowTemplate":
        return (
            "To run a ClusterWorkflowTemplate, create it on the cluster and pass its name as "
            "cluster_workflow_template= (with parameters=), or give a Workflow manifest"
        )
    return (
        "Airflow schedules the task, so a CronWorkflow is not needed: give its "
        "spec.workflowSpec as the spec of a Workflow manifest, or create a WorkflowTemplate and "
        "pass workflow_template="
    )


# --- Jinja protection ---------------------------------------------------------------------------

_RAW_OPEN = "{% raw %}"
_RAW_CLOSE = "{% endraw %}"
_RAW_START = re.compile(r"\{%[-+]?\s*raw\s*[-+]?%\}")
_RAW_END = re.compile(r"\{%[-+]?\s*endraw\s*[-+]?%\}")
_JINJA_OPEN = re.compile(r"\{\{|\{%|\$\{#|\{#")
_JINJA_STATEMENT = re.compile(
    r"\{%[-+]?\s*(?:if|elif|else|endif|for|endfor|set|endset|macro|endmacro|call|endcall|"
    r"filter|endfilter|with|endwith|block|endblock|include|import|from|extends|autoescape|"
    r"endautoescape|do|break|continue|trans|pluralize|endtrans)(?![A-Za-z0-9_])"
)
_IDENTIFIER = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)")
_CLOSERS = {"(": ")", "[": "]", "{": "}"}


def protect_argo_expressions(text: str) -> str:
    """``text`` with every Argo expression wrapped in ``{% raw %}…{% endraw %}``.

    An Argo expression is a ``{{…}}`` tag whose first identifier is one of
    :data:`ARGO_EXPRESSION_ROOTS` (``{{inputs.parameters.x}}``, ``{{ item }}``) or an expression
    tag ``{{=…}}``. Like Argo, the tag ends at the first ``}}``. Rendering the result with Jinja
    gives the Argo expressions back byte for byte, while Airflow's own expressions
    (``{{ ds }}``, ``{{ params.max }}``, ``{% if %}`` blocks) still render. Text already inside a
    ``{% raw %}`` block and whole Jinja tags (including string literals such as
    ``{{ '{{inputs.x}}' }}``) are left as they are, so protecting twice changes nothing.

    What only looks like Jinja is protected too, so a valid Workflow is submitted as written: a
    shell ``${#var}``; a ``{#`` that no ``#}`` closes (an expr-lang closure such as
    ``filter(data, {# endsWith "main.log"})``); a ``{%`` that does not start a Jinja statement
    (``printf "{%s}"``). A ``{# … #}`` comment and ``{% if %}`` blocks stay Jinja's.
    """
    out: list[str] = []
    pos = 0
    while True:
        match = _JINJA_OPEN.search(text, pos)
        if match is None:
            out.append(text[pos:])
            return "".join(out)
        start, token = match.start(), match.group()
        if token == "${#":
            out.append(text[pos : start + 1])
            out.append(f"{_RAW_OPEN}{{#{_RAW_CLOSE}")
            pos = start + 3
            continue
        if token == "{#":
            close = text.find("#}", start + 2)
            if close < 0:  # not a comment Jinja could end: literal text
                out.append(f"{text[pos:start]}{_RAW_OPEN}{{#{_RAW_CLOSE}")
                pos = start + 2
            else:
                out.append(text[pos : close + 2])
                pos = close + 2
            continue
        if token == "{%":
            raw = _RAW_START.match(text, start)
            if raw is not None:
                end = _RAW_END.search(text, raw.end())
                stop = end.end() if end is not None else len(text)
            elif _JINJA_STATEMENT.match(text, start):
                stop = _jinja_tag_end(text, start + 2, "%}")
            else:  # "{%s}" and the like: not a Jinja statement
                out.append(f"{text[pos:start]}{_RAW_OPEN}{{%{_RAW_CLOSE}")
                pos = start + 2
                continue
            out.append(text[pos:stop])
            pos = stop
            continue
        if _is_argo_tag(text, start + 2):
            close = text.find("}}", start + 2)
            if close >= 0:
                out.append(text[pos:start])
                out.append(f"{_RAW_OPEN}{text[start : close + 2]}{_RAW_CLOSE}")
                pos = close + 2
                continue
        stop = _jinja_tag_end(text, start + 2, "}}")
        out.append(text[pos:stop])
        pos = stop


def _is_argo_tag(text: str, body: int) -> bool:
    if text.startswith("=", body):
        return True
    match = _IDENTIFIER.match(text, body)
    return match is not None and match.group(1) in ARGO_EXPRESSION_ROOTS


def _jinja_tag_end(text: str, index: int, closer: str) -> int:
    """Where a Jinja tag whose body starts at ``index`` ends (after ``closer``), skipping string
    literals and bracketed expressions as Jinja's lexer does; ``index`` when it does not end."""
    stack: list[str] = []
    quote = ""
    i, n = index, len(text)
    while i < n:
        char = text[i]
        if quote:
            if char == "\\":
                i += 2
                continue
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif not stack and text.startswith(closer, i):
            return i + len(closer)
        elif char in _CLOSERS:
            stack.append(_CLOSERS[char])
        elif stack and char == stack[-1]:
            stack.pop()
        i += 1
    return index


# --- parameters ---------------------------------------------------------------------------------


def argo_parameter_value(value: Any) -> str:
    """A parameter value as Argo wants it: a string.

    ``str`` as is; ``True``/``False`` → ``"true"``/``"false"``; numbers → ``str()``; ``None`` →
    ``""``; lists, tuples and dicts → compact JSON (what ``withParam`` parses); dates and
    datetimes → ISO 8601. Anything else is an :class:`InvalidInputError`.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if value is None:
        return ""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (list, tuple, dict)):
        try:
            return json.dumps(
                value, separators=(",", ":"), ensure_ascii=False, default=_json_default
            )
        except (TypeError, ValueError) as e:
            raise InvalidInputError(
                f"parameter value {value!r} is not JSON-serialisable: {e}"
            ) from None
    raise InvalidInputError(
        f"parameter value {value!r} ({type_name(value)}) cannot be passed to Argo; give a string, "
        "a number, a boolean, or a list/dict (sent as JSON)"
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(f"{type_name(value)} is not JSON-serialisable")


def _parameter_list(holder: Any, field: str = "parameters") -> list[Obj]:
    """The well-formed ``{name: …}`` entries of ``holder[field]`` (malformed ones are skipped;
    :func:`workflow_problems` reports them)."""
    if not isinstance(holder, Mapping):
        return []
    entries = holder.get(field)
    if not isinstance(entries, list):
        return []
    return [e for e in entries if isinstance(e, dict) and isinstance(e.get("name"), str)]


def _find_template(spec: Mapping[str, Any], name: Any) -> Obj | None:
    templates = spec.get("templates")
    if not isinstance(templates, list):
        return None
    for template in templates:
        if isinstance(template, dict) and template.get("name") == name:
            return template
    return None


def _declared(spec: Mapping[str, Any]) -> dict[str, Obj]:
    """Declared parameter name → its declaration (the workflow argument, else the entrypoint
    input)."""
    declared: dict[str, Obj] = {}
    for entry in _parameter_list(spec.get("arguments")):
        declared.setdefault(entry["name"], entry)
    entrypoint = _find_template(spec, spec.get("entrypoint"))
    if entrypoint is not None:
        for entry in _parameter_list(entrypoint.get("inputs")):
            declared.setdefault(entry["name"], entry)
    return declared


def declared_parameters(spec: Mapping[str, Any]) -> list[str]:
    """The parameter names a submission may set: ``spec.arguments.parameters``, then the inputs
    of the entrypoint template (Argo feeds those from the workflow arguments by name)."""
    if not isinstance(spec, Mapping):
        return []
    return list(_declared(spec))


def _has_value(entry: Mapping[str, Any], *fields: str) -> bool:
    return any(entry.get(field) is not None for field in fields)


# --- the request --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkflowRequest:
    """What the operator was asked for: one source, plus parameters and knobs.

    ``template`` is the WorkflowTemplate/ClusterWorkflowTemplate object read from the cluster,
    when known, to check parameters and the entrypoint against. ``ttl_strategy=None`` and
    ``pod_gc=None`` leave those unset.
    """

    workflow: dict[str, Any] | None = None
    workflow_template: str | None = None
    cluster_workflow_template: str | None = None
    template: dict[str, Any] | None = None
    parameters: Mapping[str, Any] | None = None
    entrypoint: str | None = None
    labels: Mapping[str, str] | None = None
    annotations: Mapping[str, str] | None = None
    service_account_name: str | None = None
    ttl_strategy: Mapping[str, Any] | None = dataclass_field(
        default_factory=lambda: dict(DEFAULT_TTL_STRATEGY)
    )
    pod_gc: Mapping[str, Any] | None = dataclass_field(default_factory=lambda: dict(DEFAULT_POD_GC))
    scheduled_time: dt.datetime | None = None


def scheduled_time_value(when: dt.datetime) -> str:
    """RFC 3339 in UTC with whole seconds, e.g. ``2026-01-01T10:00:00Z`` (naive means UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_workflow(
    request: WorkflowRequest, key: TaskInstanceKey, namespace: str, cluster: str
) -> Obj:
    """The complete Workflow manifest for one task instance try (see the module docstring).

    Raises :class:`InvalidInputError` listing every problem; the request is not modified.
    """
    name = object_name(key)
    problems = Problems("Workflow", namespace, name, cluster)
    if problem := dns_label_problem(namespace):
        problems.add(f"namespace {namespace!r}: {problem}; pass an existing namespace")
    template_spec = _check_request(request, problems)
    problems.raise_if_any()

    if request.workflow is not None:
        workflow = _from_manifest(request.workflow, problems)
    else:
        workflow = _from_template(request, template_spec)
    problems.raise_if_any()

    _apply_identity(workflow, request, key, name, namespace, problems)
    spec = workflow["spec"]
    _apply_entrypoint(spec, request, template_spec, problems)
    _apply_parameters(spec, request, template_spec, problems)
    _apply_defaults(spec, request, template_spec)
    problems.raise_if_any()

    problems.extend(workflow_problems(workflow))
    problems.raise_if_any()
    return workflow


# --- building -----------------------------------------------------------------------------------


def _check_request(request: WorkflowRequest, problems: Problems) -> Mapping[str, Any] | None:
    """Problems with the arguments themselves; returns the known template's spec."""
    sources = [
        arg
        for arg in ("workflow", "workflow_template", "cluster_workflow_template")
        if getattr(request, arg) is not None
    ]
    if not sources:
        problems.add(
            "nothing to run: give a Workflow manifest (workflow=), the name of a WorkflowTemplate "
            "(workflow_template=) or of a ClusterWorkflowTemplate (cluster_workflow_template=)"
        )
    elif len(sources) > 1:
        problems.add(
            f"{' and '.join(f'{s}=' for s in sources)} were both given; give exactly one source "
            "(a Workflow that uses a template can reference it with spec.workflowTemplateRef)"
        )
    if request.workflow is not None and not isinstance(request.workflow, Mapping):
        problems.add(
            f"workflow must be a Workflow manifest (a dict), not {type_name(request.workflow)}"
        )
    for arg in ("workflow_template", "cluster_workflow_template", "service_account_name"):
        value = getattr(request, arg)
        if value is not None and (problem := dns_subdomain_problem(value)):
            problems.add(f"{arg}={value!r} is invalid: {problem}")
    if request.entrypoint is not None and (problem := _field_name_problem(request.entrypoint)):
        problems.add(f"entrypoint={request.entrypoint!r} is invalid: {problem}")
    if request.parameters is not None:
        if not isinstance(request.parameters, Mapping):
            problems.add(
                "parameters must be a dict of name → value such as {'max': 30}, not "
                f"{type_name(request.parameters)}"
            )
        else:
            for param, value in request.parameters.items():
                if not isinstance(param, str) or not _PARAMETER_NAME.match(param):
                    problems.add(
                        f"parameter name {param!r} is invalid: use letters, digits, '_' and '-'"
                    )
                try:
                    argo_parameter_value(value)
                except InvalidInputError as e:
                    problems.add(f"parameters[{param!r}]: {e}")
    for arg in ("labels", "annotations", "ttl_strategy", "pod_gc"):
        value = getattr(request, arg)
        if value is not None and not isinstance(value, Mapping):
            problems.add(f"{arg} must be a dict, not {type_name(value)}")
    if request.scheduled_time is not None and not isinstance(request.scheduled_time, dt.datetime):
        problems.add(f"scheduled_time must be a datetime, not {type_name(request.scheduled_time)}")
    return _check_template(request, problems)


def _check_template(request: WorkflowRequest, problems: Problems) -> Mapping[str, Any] | None:
    template = request.template
    if template is None:
        return None
    if request.cluster_workflow_template is not None:
        expected, name = "ClusterWorkflowTemplate", request.cluster_workflow_template
    elif request.workflow_template is not None:
        expected, name = "WorkflowTemplate", request.workflow_template
    else:
        expected, name = "", None
    if not isinstance(template, Mapping):
        problems.add(f"template must be the template object (a dict), not {type_name(template)}")
        return None
    kind = template.get("kind")
    if expected and kind not in (None, expected):
        problems.add(f"template is a {kind}, but {expected} {name!r} is submitted")
    meta = template.get("metadata")
    got = meta.get("name") if isinstance(meta, Mapping) else None
    if name is not None and got is not None and got != name:
        problems.add(f"template is {got!r}, but {expected} {name!r} is submitted")
    spec = template.get("spec")
    if not isinstance(spec, Mapping):
        problems.add("template has no spec mapping; pass the object as read from the cluster")
        return None
    return spec


def _from_manifest(manifest: Mapping[str, Any], problems: Problems) -> Obj:
    """A deep copy of the user's Workflow, with what the server wrote removed."""
    try:
        workflow = load_workflow(dict(manifest), where="workflow")
    except InvalidInputError as e:
        problems.add(str(e))
        return {}
    meta = workflow.get("metadata")
    if meta is None:
        meta = workflow["metadata"] = {}
    if not isinstance(meta, dict):
        problems.add(f"metadata must be a mapping, not {yaml_type(meta)}")
    spec = workflow.get("spec")
    if spec is None:
        problems.add(
            "the Workflow has no spec; give entrypoint and templates (or a workflowTemplateRef)"
        )
    elif not isinstance(spec, dict):
        problems.add(f"spec must be a mapping, not {yaml_type(spec)}")
    if problems.items:
        return workflow
    for field in SERVER_METADATA:
        meta.pop(field, None)
    meta.pop("generateName", None)
    labels = meta.get("labels")
    if isinstance(labels, dict):
        for label in _CONTROLLER_LABELS:
            labels.pop(label, None)
    workflow.pop("status", None)
    return workflow


def _from_template(request: WorkflowRequest, template_spec: Mapping[str, Any] | None) -> Obj:
    """The Workflow ``argo submit --from`` makes of a (Cluster)WorkflowTemplate."""
    cluster_scope = request.cluster_workflow_template is not None
    name = request.cluster_workflow_template if cluster_scope else request.workflow_template
    ref: Obj = {"name": name}
    if cluster_scope:
        ref["clusterScope"] = True
    labels: Obj = {}
    annotations: Obj = {}
    metadata = template_spec.get("workflowMetadata") if template_spec else None
    if isinstance(metadata, Mapping):
        if isinstance(metadata.get("labels"), Mapping):
            labels.update(metadata["labels"])
        if isinstance(metadata.get("annotations"), Mapping):
            annotations.update(metadata["annotations"])
    return {
        "apiVersion": WORKFLOWS_API_VERSION,
        "kind": "Workflow",
        "metadata": {"labels": labels, "annotations": annotations},
        "spec": {"workflowTemplateRef": ref},
    }


def _apply_identity(
    workflow: Obj,
    request: WorkflowRequest,
    key: TaskInstanceKey,
    name: str,
    namespace: str,
    problems: Problems,
) -> None:
    meta = workflow["metadata"]
    given = meta.get("namespace")
    if given is not None and given != namespace:
        problems.add(
            f"metadata.namespace is {given!r} but the task targets namespace {namespace!r}; "
            f"remove metadata.namespace from the manifest or pass namespace={given!r} to the task"
        )
    meta["name"] = name
    meta["namespace"] = namespace
    ours = task_annotations(key)
    if request.scheduled_time is not None:
        ours = {SCHEDULED_TIME_ANNOTATION: scheduled_time_value(request.scheduled_time), **ours}
    labels = task_labels(key)
    if request.cluster_workflow_template is not None:
        labels = {CLUSTER_WORKFLOW_TEMPLATE_LABEL: request.cluster_workflow_template, **labels}
    elif request.workflow_template is not None:
        labels = {WORKFLOW_TEMPLATE_LABEL: request.workflow_template, **labels}
    meta["labels"] = merged(meta.get("labels"), request.labels, labels, "metadata.labels", problems)
    meta["annotations"] = merged(
        meta.get("annotations"), request.annotations, ours, "metadata.annotations", problems
    )


def _template_names(spec: Mapping[str, Any]) -> list[str]:
    templates = spec.get("templates")
    if not isinstance(templates, list):
        return []
    return [t["name"] for t in templates if isinstance(t, dict) and isinstance(t.get("name"), str)]


def _apply_entrypoint(
    spec: Obj,
    request: WorkflowRequest,
    template_spec: Mapping[str, Any] | None,
    problems: Problems,
) -> None:
    if request.entrypoint is None:
        return
    names = _template_names(spec)
    if template_spec is not None:
        names += _template_names(template_spec)
    # Without the referenced template object its template names are not known here.
    unknown = template_spec is None and spec.get("workflowTemplateRef") is not None and not names
    if not unknown and request.entrypoint not in names:
        where = "the template" if request.workflow is None else "the Workflow"
        listed = ", ".join(names) or "none"
        problems.add(
            f"entrypoint={request.entrypoint!r} names no template of {where} (its templates: "
            f"{listed}){did_you_mean(request.entrypoint, names)}"
        )
    spec["entrypoint"] = request.entrypoint


def _effective_declarations(
    spec: Mapping[str, Any], template_spec: Mapping[str, Any] | None
) -> dict[str, Obj] | None:
    """Declared parameters of what will run, ``None`` when they cannot be known here."""
    if template_spec is None:
        if spec.get("workflowTemplateRef") is not None:
            return None
        return _declared(spec)
    view = dict(template_spec)
    if spec.get("entrypoint") is not None:
        view["entrypoint"] = spec["entrypoint"]
    declared = _declared(view)
    for name, entry in _declared(spec).items():
        declared.setdefault(name, entry)
    return declared


def _apply_parameters(
    spec: Obj,
    request: WorkflowRequest,
    template_spec: Mapping[str, Any] | None,
    problems: Problems,
) -> None:
    given = {k: argo_parameter_value(v) for k, v in (request.parameters or {}).items()}
    declared = _effective_declarations(spec, template_spec)
    if declared is not None:
        unknown = [name for name in given if name not in declared]
        if unknown:
            if request.workflow_template:
                source = f"WorkflowTemplate {request.workflow_template}"
            elif request.cluster_workflow_template:
                source = f"ClusterWorkflowTemplate {request.cluster_workflow_template}"
            else:
                source = "Workflow"
            several = len(unknown) > 1
            listed = ", ".join(_with_hint(name, declared) for name in unknown)
            problems.add(
                f"parameter{'s' if several else ''} {listed} {'are' if several else 'is'} not "
                f"declared by the {source} (declared: {', '.join(declared) or 'none'}); fix the "
                f"name, or declare {'them' if several else 'it'} in spec.arguments.parameters "
                "or as an input of the entrypoint template"
            )
        for name, value in given.items():
            enum = declared.get(name, {}).get("enum")
            if isinstance(enum, list) and value not in [argo_parameter_value(e) for e in enum]:
                allowed = ", ".join(repr(argo_parameter_value(e)) for e in enum)
                problems.add(f"parameter {name}={value!r} is not one of its enum values: {allowed}")

    arguments = spec.get("arguments")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        problems.add(f"spec.arguments must be a mapping, not {yaml_type(arguments)}")
        return
    parameters = arguments.get("parameters")
    if parameters is None:
        parameters = []
    if not isinstance(parameters, list):
        problems.add(f"spec.arguments.parameters must be a list, not {yaml_type(parameters)}")
        return
    if given:
        by_name = {
            e["name"]: e
            for e in parameters
            if isinstance(e, dict) and isinstance(e.get("name"), str)
        }
        for name, value in given.items():
            entry = by_name.get(name)
            if entry is None:
                parameters.append({"name": name, "value": value})
            else:
                entry["value"] = value
                entry.pop("valueFrom", None)
        arguments["parameters"] = parameters
        spec["arguments"] = arguments

    if declared is not None:
        _check_values(spec, template_spec, problems)


def _with_hint(name: str, candidates: Iterable[str]) -> str:
    """``name``, or ``name (did you mean other?)`` when a candidate is close."""
    hint = did_you_mean(name, candidates)
    return f"{name} ({hint.removeprefix('; ')})" if hint else name


def _check_values(
    spec: Mapping[str, Any], template_spec: Mapping[str, Any] | None, problems: Problems
) -> None:
    """A declared parameter that will have no value: Argo refuses the Workflow at submit."""
    supplied = {e["name"]: e for e in _parameter_list(spec.get("arguments"))}
    base = template_spec if template_spec is not None else spec
    for entry in _parameter_list(base.get("arguments")):
        if not _has_value(supplied.get(entry["name"], entry), "value", "valueFrom"):
            problems.add(
                f"parameter {entry['name']} has no value; pass parameters={{{entry['name']!r}: "
                "...}} or give it a value in spec.arguments.parameters"
            )
    entrypoint = _find_template(base, spec.get("entrypoint") or base.get("entrypoint"))
    if entrypoint is None and template_spec is not None:
        entrypoint = _find_template(spec, spec.get("entrypoint"))
    if entrypoint is None:
        return
    arguments = {e["name"] for e in _parameter_list(base.get("arguments"))} | set(supplied)
    for entry in _parameter_list(entrypoint.get("inputs")):
        if entry["name"] in arguments or _has_value(entry, "value", "default", "valueFrom"):
            continue
        problems.add(
            f"input {entry['name']} of the entrypoint template {entrypoint.get('name')} gets no "
            f"value; pass parameters={{{entry['name']!r}: ...}} or give it a default"
        )


def _apply_defaults(
    spec: Obj, request: WorkflowRequest, template_spec: Mapping[str, Any] | None
) -> None:
    for field, value in (
        ("ttlStrategy", request.ttl_strategy),
        ("podGC", request.pod_gc),
        ("serviceAccountName", request.service_account_name),
    ):
        if value is None or spec.get(field) is not None:
            continue
        if template_spec is not None and template_spec.get(field) is not None:
            continue
        spec[field] = copy.deepcopy(dict(value)) if isinstance(value, Mapping) else value


# --- validation ---------------------------------------------------------------------------------


def _field_name_problem(name: Any) -> str | None:
    """Argo's rule for template, step and task names."""
    if not isinstance(name, str):
        return f"must be a string, not {type_name(name)}"
    if not name:
        return "must not be empty"
    if len(name) > _FIELD_NAME_MAX:
        return f"must be no more than {_FIELD_NAME_MAX} characters (it has {len(name)})"
    if not _FIELD_NAME.match(name):
        return (
            "must consist of letters, digits and '-', and start with a letter or digit "
            "(e.g. 'train-model')"
        )
    return None


def workflow_problems(workflow: Mapping[str, Any]) -> list[str]:
    """What is wrong with a built Workflow, as messages naming the field.

    Checked: ``spec`` is a mapping; ``entrypoint`` names a template (unless a
    ``workflowTemplateRef`` is used); template names are valid and unique; each template has
    exactly one type; ``steps`` are a list of step groups; steps and DAG tasks have valid, unique
    names and every ``template`` they (and ``onExit``/exit hooks) reference exists; DAG
    ``dependencies``/``depends`` name existing tasks; ``activeDeadlineSeconds`` and
    ``parallelism`` are non-negative integers; ``ttlStrategy`` and ``podGC``; labels and
    annotations.
    """
    problems: list[str] = []
    meta = workflow.get("metadata")
    if isinstance(meta, Mapping):
        problems += label_problems(meta.get("labels"), "metadata.labels")
        problems += annotation_problems(meta.get("annotations"), "metadata.annotations")
    spec = workflow.get("spec")
    if not isinstance(spec, Mapping):
        return [*problems, f"spec must be a mapping, not {yaml_type(spec)}"]

    uses_ref = spec.get("workflowTemplateRef") is not None
    if uses_ref:
        ref = spec["workflowTemplateRef"]
        if not isinstance(ref, Mapping) or not isinstance(ref.get("name"), str):
            problems.append("spec.workflowTemplateRef must be a mapping with the template's name")
    templates = spec.get("templates")
    names: list[str] = []
    if templates is None:
        if not uses_ref:
            problems.append(
                "spec.templates is missing; a Workflow needs at least one template (or a "
                "spec.workflowTemplateRef)"
            )
        templates = []
    elif not isinstance(templates, list):
        problems.append(f"spec.templates must be a list of templates, not {yaml_type(templates)}")
        templates = []
    for i, template in enumerate(templates):
        if not isinstance(template, dict):
            problems.append(f"spec.templates[{i}] must be a mapping, not {yaml_type(template)}")
            continue
        name = template.get("name")
        if problem := _field_name_problem(name):
            problems.append(f"spec.templates[{i}].name {name!r} {problem}")
        elif name in names:
            problems.append(f"spec.templates[{i}].name {name!r} is used by two templates")
        else:
            names.append(str(name))
    if templates and not names and not uses_ref:
        return problems

    entrypoint = spec.get("entrypoint")
    if entrypoint is None:
        if not uses_ref:
            problems.append(
                "spec.entrypoint is missing; set it to the name of the template to run first "
                f"(templates: {', '.join(names) or 'none'})"
            )
    elif not isinstance(entrypoint, str):
        problems.append(f"spec.entrypoint must be a template name, not {yaml_type(entrypoint)}")
    elif entrypoint not in names and not uses_ref:
        problems.append(
            f"spec.entrypoint {entrypoint!r} names no template (templates: "
            f"{', '.join(names) or 'none'}){did_you_mean(entrypoint, names)}"
        )

    check_refs = not uses_ref
    problems += _hook_problems(spec, "spec", names, check_refs)
    problems += _arguments_problems(spec.get("arguments"), "spec.arguments")
    problems += _count_problems(spec, "spec", allow_expressions=False)
    problems += _cleanup_problems(spec)
    sa = spec.get("serviceAccountName")
    if sa is not None and (problem := dns_subdomain_problem(sa)):
        problems.append(f"spec.serviceAccountName {sa!r}: {problem}")
    for template in templates:
        if isinstance(template, dict) and isinstance(template.get("name"), str):
            problems += _template_problems(template, names, check_refs)
    return problems


def _template_problems(template: Obj, names: list[str], check_refs: bool) -> list[str]:
    path = f"template {template['name']}"
    problems: list[str] = []
    types = [t for t in _TEMPLATE_TYPES if template.get(t) is not None]
    if not types:
        problems.append(
            f"{path} has no template type; give exactly one of {', '.join(_TEMPLATE_TYPES)}"
            + "".join(
                did_you_mean(k, _TEMPLATE_TYPES)
                for k in template
                if isinstance(k, str) and k not in _TEMPLATE_FIELDS
            )
        )
    elif len(types) > 1:
        problems.append(
            f"{path} has {len(types)} template types ({', '.join(types)}); a template is exactly "
            "one of them — move the others into templates of their own"
        )
    problems += _count_problems(template, path, allow_expressions=True)
    for section in ("inputs", "outputs"):
        holder = template.get(section)
        if holder is not None and not isinstance(holder, dict):
            problems.append(f"{path}.{section} must be a mapping, not {yaml_type(holder)}")
        elif holder is not None:
            problems += _parameter_entries_problems(holder.get("parameters"), f"{path}.{section}")
    steps = template.get("steps")
    if steps is not None:
        problems += _steps_problems(steps, path, names, check_refs)
    dag = template.get("dag")
    if dag is not None:
        problems += _dag_problems(dag, path, names, check_refs)
    return problems


def _steps_problems(steps: Any, path: str, names: list[str], check_refs: bool) -> list[str]:
    shape = (
        f"{path}.steps must be a list of step groups, each a list of steps run in parallel "
        "(YAML '- - name: a'); a group of one step is still a list"
    )
    if not isinstance(steps, list):
        return [shape]
    problems: list[str] = []
    seen: set[str] = set()
    for g, group in enumerate(steps):
        if not isinstance(group, list):
            if isinstance(group, dict):
                problems.append(f"{shape}: steps[{g}] is a single step, write it as '- - name: …'")
            else:
                problems.append(f"{shape}: steps[{g}] is a {yaml_type(group)}")
            continue
        for s, step in enumerate(group):
            where = f"{path}.steps[{g}][{s}]"
            if not isinstance(step, dict):
                problems.append(f"{where} must be a mapping with name and template")
                continue
            problems += _call_problems(step, where, names, check_refs, seen, "step")
    return problems


def _dag_problems(dag: Any, path: str, names: list[str], check_refs: bool) -> list[str]:
    if not isinstance(dag, dict) or not isinstance(dag.get("tasks"), list):
        return [f"{path}.dag must be a mapping with a list of tasks (dag: {{tasks: [...]}})"]
    problems: list[str] = []
    seen: set[str] = set()
    tasks = dag["tasks"]
    for t, task in enumerate(tasks):
        if not isinstance(task, dict):
            problems.append(f"{path}.dag.tasks[{t}] must be a mapping with name and template")
            continue
        problems += _call_problems(task, f"{path}.dag.tasks[{t}]", names, check_refs, seen, "task")
    task_names = sorted(seen)
    for t, task in enumerate(tasks):
        if not isinstance(task, dict):
            continue
        where = f"{path}.dag.tasks[{t}] ({task.get('name')})"
        dependencies = task.get("dependencies")
        if dependencies is not None:
            if not isinstance(dependencies, list) or not all(
                isinstance(d, str) for d in dependencies
            ):
                problems.append(f"{where}.dependencies must be a list of task names")
                dependencies = []
            for dependency in dependencies:
                if dependency not in seen:
                    problems.append(
                        f"{where} depends on {dependency!r}, which is not a task of this DAG "
                        f"(tasks: {', '.join(task_names)}){did_you_mean(dependency, task_names)}"
                    )
        depends = task.get("depends")
        if dependencies is not None and depends is not None:
            problems.append(f"{where} has both dependencies and depends; use one of them")
        if isinstance(depends, str) and "{{" not in depends:
            if problem := depends_syntax_problem(depends):
                problems.append(f"{where}.depends {depends!r}: {problem}")
            for token in _DEPENDS_TASK.findall(depends):
                dependency = token.split(".", 1)[0]
                if dependency not in seen:
                    problems.append(
                        f"{where}.depends names {dependency!r}, which is not a task of this DAG "
                        f"(tasks: {', '.join(task_names)}){did_you_mean(dependency, task_names)}"
                    )
    return problems


DEPENDS_RESULTS = (
    "Succeeded",
    "Failed",
    "Errored",
    "Skipped",
    "Omitted",
    "Daemoned",
    "AnySucceeded",
    "AllFailed",
)
_DEPENDS_TOKEN = re.compile(
    r"\s*(?:(&&|\|\||!|\(|\))|([A-Za-z0-9][-A-Za-z0-9]*)(?:\.([A-Za-z]+))?)"
)


def depends_syntax_problem(expression: str) -> str | None:
    """What is wrong with a DAG task's ``depends`` expression (``a && (b.Failed || !c)``): task
    names, optionally with ``.Succeeded`` and the like, joined by ``&&``, ``||``, ``!`` and
    parentheses; ``None`` when it parses."""
    tokens: list[tuple[str, str | None]] = []
    position, text = 0, expression.rstrip()
    while position < len(text):
        found = _DEPENDS_TOKEN.match(text, position)
        if found is None or found.end() == position:
            return f"unexpected {text[position:].strip()[:20]!r} at character {position + 1}"
        operator, name, result = found.groups()
        if name is not None and result is not None and result not in DEPENDS_RESULTS:
            return (
                f"{name}.{result}: unknown result {result!r}; use one of "
                f"{', '.join(DEPENDS_RESULTS)}{did_you_mean(result, DEPENDS_RESULTS)}"
            )
        tokens.append(("op", operator) if operator else ("task", name))
        position = found.end()
    index = 0

    def expect_term() -> str | None:
        nonlocal index
        if index >= len(tokens):
            return "the expression ends where a task name was expected"
        kind, value = tokens[index]
        index += 1
        if kind == "task":
            return None
        if value == "!":
            return expect_term()
        if value == "(":
            if problem := expect_expression():
                return problem
            if index >= len(tokens) or tokens[index] != ("op", ")"):
                return "a '(' is not closed"
            index += 1
            return None
        return f"{value!r} where a task name was expected"

    def expect_expression() -> str | None:
        nonlocal index
        if problem := expect_term():
            return problem
        while index < len(tokens) and tokens[index] in (("op", "&&"), ("op", "||")):
            index += 1
            if problem := expect_term():
                return problem
        return None

    if not tokens:
        return "the expression is empty"
    problem = expect_expression()
    if problem is None and index < len(tokens):
        problem = f"unexpected {tokens[index][1]!r} (join tasks with && or ||)"
    if problem is None:
        return None
    return f"{problem}; write e.g. 'a && (b.Succeeded || c.Failed)'"


def _call_problems(
    call: Obj, where: str, names: list[str], check_refs: bool, seen: set[str], noun: str
) -> list[str]:
    """A step or DAG task: its name, the template it runs, its exit hooks."""
    problems: list[str] = []
    name = call.get("name")
    if problem := _field_name_problem(name):
        problems.append(f"{where}.name {name!r} {problem}")
    elif name in seen:
        problems.append(f"{where}.name {name!r} is used by two {noun}s of this template")
    else:
        seen.add(str(name))
    kinds = [k for k in ("template", "templateRef", "inline") if call.get(k) is not None]
    if not kinds:
        problems.append(f"{where} ({name}) runs nothing; give template: <name of a template>")
    elif len(kinds) > 1:
        problems.append(f"{where} ({name}) has {' and '.join(kinds)}; give only one")
    ref = call.get("template")
    if ref is not None:
        problems += _ref_problems(ref, f"{where} ({name}).template", names, check_refs)
    problems += _hook_problems(call, f"{where} ({name})", names, check_refs)
    if isinstance(call.get("arguments"), dict):
        problems += _parameter_entries_problems(
            call["arguments"].get("parameters"), f"{where} ({name}).arguments"
        )
    return problems


def _ref_problems(ref: Any, where: str, names: list[str], check_refs: bool) -> list[str]:
    if not isinstance(ref, str):
        return [f"{where} must be a template name, not {yaml_type(ref)}"]
    if check_refs and ref not in names:
        return [
            f"{where} {ref!r} is not a template of this Workflow (templates: "
            f"{', '.join(names)}){did_you_mean(ref, names)}"
        ]
    return []


def _hook_problems(
    holder: Mapping[str, Any], where: str, names: list[str], check: bool
) -> list[str]:
    problems: list[str] = []
    on_exit = holder.get("onExit")
    if on_exit is not None:
        problems += _ref_problems(on_exit, f"{where}.onExit", names, check)
    hooks = holder.get("hooks")
    if isinstance(hooks, dict):
        for hook_name, hook in hooks.items():
            if isinstance(hook, dict) and hook.get("template") is not None:
                problems += _ref_problems(
                    hook["template"], f"{where}.hooks.{hook_name}.template", names, check
                )
    elif hooks is not None:
        problems.append(f"{where}.hooks must be a mapping of hook name → {{template: …}}")
    return problems


def _arguments_problems(arguments: Any, where: str) -> list[str]:
    if arguments is None:
        return []
    if not isinstance(arguments, dict):
        return [f"{where} must be a mapping, not {yaml_type(arguments)}"]
    return _parameter_entries_problems(arguments.get("parameters"), where)


def _parameter_entries_problems(parameters: Any, where: str) -> list[str]:
    if parameters is None:
        return []
    if not isinstance(parameters, list):
        return [
            f"{where}.parameters must be a list of {{name, value}} entries, not "
            f"{yaml_type(parameters)}"
        ]
    problems: list[str] = []
    seen: set[str] = set()
    for i, entry in enumerate(parameters):
        if not isinstance(entry, dict):
            problems.append(f"{where}.parameters[{i}] must be a mapping with a name")
            continue
        name = entry.get("name")
        if not isinstance(name, str) or not _PARAMETER_NAME.match(name):
            problems.append(
                f"{where}.parameters[{i}].name {name!r} is invalid: use letters, digits, '_' "
                "and '-'"
            )
        elif name in seen:
            problems.append(f"{where}.parameters: {name!r} is declared twice")
        else:
            seen.add(name)
        enum = entry.get("enum")
        if enum is not None and (not isinstance(enum, list) or not enum):
            problems.append(f"{where}.parameters[{i}] ({name}).enum must be a non-empty list")
    return problems


def _count_problems(holder: Mapping[str, Any], where: str, *, allow_expressions: bool) -> list[str]:
    problems: list[str] = []
    for field in ("activeDeadlineSeconds", "parallelism"):
        value = holder.get(field)
        if value is None:
            continue
        if (
            allow_expressions
            and field == "activeDeadlineSeconds"
            and isinstance(value, str)
            and (value.isdigit() or "{{" in value)
        ):
            continue
        if not is_int(value):
            problems.append(f"{where}.{field} must be an integer, not {value!r}")
        elif value < 0:
            problems.append(f"{where}.{field} is {value}; it must be 0 or more")
    return problems


def _cleanup_problems(spec: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    ttl = spec.get("ttlStrategy")
    if ttl is not None:
        if not isinstance(ttl, dict):
            problems.append(f"spec.ttlStrategy must be a mapping, not {yaml_type(ttl)}")
        else:
            for field, value in ttl.items():
                if field not in _TTL_FIELDS:
                    problems.append(
                        f"spec.ttlStrategy.{field} is not a ttlStrategy field (use "
                        f"{', '.join(_TTL_FIELDS)}){did_you_mean(str(field), _TTL_FIELDS)}"
                    )
                elif not is_int(value) or value < 0:
                    problems.append(
                        f"spec.ttlStrategy.{field} must be a number of seconds (0 or more), not "
                        f"{value!r}"
                    )
    gc = spec.get("podGC")
    if gc is not None:
        if not isinstance(gc, dict):
            problems.append(f"spec.podGC must be a mapping, not {yaml_type(gc)}")
        else:
            strategy = gc.get("strategy")
            if strategy not in (None, "", *_POD_GC_STRATEGIES):
                problems.append(
                    f"spec.podGC.strategy {strategy!r} is not supported; use "
                    f"{', '.join(_POD_GC_STRATEGIES)}"
                    f"{did_you_mean(str(strategy), _POD_GC_STRATEGIES)}"
                )
            delay = gc.get("deleteDelayDuration")
            if delay is not None and not (isinstance(delay, str) and _GO_DURATION.match(delay)):
                problems.append(
                    f"spec.podGC.deleteDelayDuration {delay!r} is not a duration; use forms such "
                    "as '30s', '5m' or '1h30m'"
                )
    return problems
