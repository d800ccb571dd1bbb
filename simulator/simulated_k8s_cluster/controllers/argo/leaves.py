"""Leaf templates and retries: ``executeContainer`` / ``createWorkflowPod``,
``executeSuspend`` and ``processNodeRetries``."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from ...admission import admit_create
from ...resources import PODS, ApiError
from . import http
from .common import TRANSIENT, ExecError, holder_template_name
from .expressions import TemplateError, humanize_duration, parse_duration
from .names import pod_name
from .nodes import FAILED, failed, fulfilled
from .pods import build_pod

if TYPE_CHECKING:
    from .engine import Operation

Obj = dict[str, Any]


# --- retries ------------------------------------------------------------------------------


def process_retries(op: Operation, retry: Obj, strategy: Obj, on_exit: bool) -> bool:
    """``processNodeRetries``: False while backing off (or when the Retry node is done)."""
    attempts = op.nodes.children(retry)
    if not attempts:
        return True
    last = attempts[-1]
    if not fulfilled(last):
        return True
    if not failed(last):
        if last.get("outputs"):
            retry["outputs"] = copy.deepcopy(last["outputs"])
        op.nodes.mark(retry["name"], "Succeeded")
        return False
    if op.shutdown or op.deadline_passed():
        if op.shutdown:
            message = f"Stopped with strategy '{op.shutdown}'"
        else:
            message = f"retry exceeded workflow deadline {op.clock.timestamp(op.deadline)}"
        op.nodes.mark(retry["name"], last["phase"], message)
        return False
    limit_value = strategy.get("limit")
    limit = int(str(limit_value)) if limit_value is not None else None
    backoff = strategy.get("backoff") or {}
    if backoff:
        if backoff.get("maxDuration"):
            max_deadline = op.clock.parse(attempts[0]["startedAt"]) + parse_duration(
                backoff["maxDuration"]
            )
            if op.now >= max_deadline:
                op.nodes.mark(retry["name"], last["phase"], "Max duration limit exceeded")
                return False
        wait = parse_duration(backoff.get("duration") or "0")
        factor = backoff.get("factor")
        if factor is not None and int(str(factor)) > 0:
            wait = wait * int(str(factor)) ** (len(attempts) - 1)
        if backoff.get("cap"):
            wait = min(wait, parse_duration(backoff["cap"]))
        ready_at = op.clock.parse(last.get("finishedAt") or op.stamp()) + wait
        if op.now < ready_at and (limit is None or len(attempts) <= limit):
            op.nodes.mark(retry["name"], retry["phase"], f"Backoff for {humanize_duration(wait)}")
            op.wake(ready_at)
            return False
        op.nodes.mark(retry["name"], retry["phase"], "")
    policy = strategy.get("retryPolicy") or "OnFailure"
    phase = last["phase"]
    retry_on: tuple[str, ...]
    if policy == "Always":
        retry_on = FAILED
    elif policy == "OnError":
        retry_on = ("Error",)
    elif policy == "OnTransientError":
        retry_on = FAILED if TRANSIENT.search(str(last.get("message", ""))) else ()
    else:
        retry_on = ("Failed",)
    if phase not in retry_on:
        op.nodes.mark(retry["name"], phase, str(last.get("message", "")))
        return False
    if limit is not None and len(attempts) > limit:
        op.nodes.mark(retry["name"], phase, "No more retries left")
        return False
    return True


# --- leaves --------------------------------------------------------------------------------


def _leaf_node(
    op: Operation,
    name: str,
    node_type: str,
    scope: str,
    tmpl: Obj,
    holder: Obj,
    boundary_id: str,
    flag: Obj | None,
) -> Obj:
    """The leaf's node: the existing one, or a new ``Pending`` node of ``node_type``."""
    node = op.nodes.get(name)
    if node is not None:
        return node
    return op.nodes.init(
        name,
        node_type,
        holder_template_name(holder),
        scope,
        boundary_id,
        "Pending",
        template_ref=holder.get("templateRef"),
        inputs=op.node_inputs(tmpl),
        flag=flag,
    )


def execute_container(
    op: Operation,
    name: str,
    scope: str,
    tmpl: Obj,
    holder: Obj,
    boundary_id: str,
    on_exit: bool,
    flag: Obj | None,
) -> Obj:
    """``executeContainer`` / ``createWorkflowPod``: the node and its pod."""
    node = op.nodes.get(name)
    if node is None:
        node = _leaf_node(op, name, "Pod", scope, tmpl, holder, boundary_id, flag)
        node["progress"] = "0/1"
        if on_exit:
            node.setdefault("nodeFlag", {})["hooked"] = True
    if not op.should_execute(on_exit):
        return op.nodes.mark(name, "Failed", f"workflow shutdown with strategy: {op.shutdown}")
    if node.get("phase") != "Pending" or node["id"] in op.pods:
        return node
    remaining = None
    if op.deadline is not None and not on_exit:
        remaining = int(op.deadline - op.now)
        if remaining <= 1:
            raise ExecError("Deadline exceeded")
    template_name = str((holder.get("templateRef") or {}).get("template") or "")
    template_name = template_name or holder_template_name(holder)
    manifest = build_pod(
        op.workflow,
        op.spec,
        node,
        tmpl,
        pod_name(op.name, name, template_name),
        on_exit,
        remaining,
    )
    store = op.host.state.store
    try:
        created = store.create(PODS, admit_create(PODS, manifest))
    except ApiError as exc:
        if exc.code != 409:
            raise ExecError(exc.message) from exc
        created = store.get(PODS, op.namespace, manifest["metadata"]["name"]) or manifest
    op.pods[node["id"]] = created
    op.pod_templates[node["id"]] = tmpl
    op.active_pods += 1
    if tmpl.get("containerSet") is not None:
        _container_graph(op, name, scope, holder, node, tmpl["containerSet"])
    return node


def _container_graph(
    op: Operation, name: str, scope: str, holder: Obj, node: Obj, container_set: Obj
) -> None:
    """``executeContainerSet``: a ``Container`` node per container, under the pod's node, linked
    as the containers' ``dependencies`` say."""
    containers = container_set.get("containers") or []
    for container in containers:
        child = f"{name}.{container.get('name')}"
        if op.nodes.get(child) is None:
            op.nodes.init(
                child,
                "Container",
                holder_template_name(holder),
                scope,
                node["id"],
                "Pending",
                template_ref=holder.get("templateRef"),
            )
    for container in containers:
        child = f"{name}.{container.get('name')}"
        for dependency in container.get("dependencies") or []:
            op.nodes.add_child(f"{name}.{dependency}", child)
        if not container.get("dependencies"):
            op.nodes.add_child(name, child)


def execute_suspend(
    op: Operation,
    name: str,
    scope: str,
    tmpl: Obj,
    holder: Obj,
    boundary_id: str,
    on_exit: bool,
    flag: Obj | None,
) -> Obj:
    """``executeSuspend``: Running, then Succeeded once ``duration`` has passed."""
    node = _leaf_node(op, name, "Suspend", scope, tmpl, holder, boundary_id, flag)
    if not op.should_execute(on_exit):
        return op.nodes.mark(name, "Failed", f"Stopped with strategy '{op.shutdown}'")
    duration = (tmpl.get("suspend") or {}).get("duration")
    if duration not in (None, ""):
        try:
            seconds = parse_duration(duration)
        except TemplateError as exc:
            raise ExecError(str(exc)) from exc
        resume_at = op.clock.parse(node["startedAt"]) + seconds
        if op.now >= resume_at:
            return op.nodes.mark(name, "Succeeded")
        op.wake(resume_at)
    if op.deadline is not None:
        op.wake(op.deadline)
    return op.nodes.mark(name, "Running")


def execute_http(
    op: Operation,
    name: str,
    scope: str,
    tmpl: Obj,
    holder: Obj,
    boundary_id: str,
    on_exit: bool,
    flag: Obj | None,
) -> Obj:
    """An ``http`` template: the request and its outcome at once (see :mod:`.http`)."""
    _leaf_node(op, name, "HTTP", scope, tmpl, holder, boundary_id, flag)
    if not op.should_execute(on_exit):
        return op.nodes.mark(name, "Failed", f"workflow shutdown with strategy: {op.shutdown}")
    spec = tmpl.get("http") or {}
    try:
        response = http.send(spec, op.host.settings.http_responses)
    except OSError as exc:
        return op.nodes.mark(name, "Failed", str(exc))
    phase, message = http.outcome(spec, response)
    op.nodes.require(name)["outputs"] = {"result": response.body}
    return op.nodes.mark(name, phase, message or None)
