"""One pass over one Workflow (the controller's ``operate``): validation on the first pass, pod
reconciliation, execution control (shutdown, deadline), the root template, the exit handler and
the Workflow's phase, message, labels and conditions."""

from __future__ import annotations

import contextlib
import functools
import json
from typing import Any

from ...resources import PODS, ApiError
from . import resource
from .common import DEADLINE_EXCEEDED, ExecError, ParallelismReached
from .engine import Operation
from .expressions import param_text
from .names import (
    COMPLETED_LABEL,
    ON_EXIT_LABEL,
    PHASE_LABEL,
    POD_NAME_FORMAT_ANNOTATION,
    SCHEDULED_TIME_ANNOTATION,
    on_exit_node_name,
)
from .nodes import fulfilled
from .pods import assess, container_nodes
from .validate import Invalid, validate

Obj = dict[str, Any]

COMPONENT = "workflow-controller"
FINISHED = ("Succeeded", "Failed", "Error")
_NODE_TO_WORKFLOW = {
    "Pending": "Pending",
    "Running": "Running",
    "Succeeded": "Succeeded",
    "Skipped": "Succeeded",
    "Omitted": "Succeeded",
    "Failed": "Failed",
    "Error": "Error",
}


def set_globals(op: Operation) -> None:
    """``setGlobalParameters``."""
    meta = op.workflow["metadata"]
    spec = op.spec
    g = op.globals
    g["workflow.name"] = op.name
    g["workflow.namespace"] = op.namespace
    g["workflow.mainEntrypoint"] = str(spec.get("entrypoint") or "")
    g["workflow.serviceAccountName"] = str(spec.get("serviceAccountName") or "")
    g["workflow.uid"] = op.uid
    created = str(meta.get("creationTimestamp") or "")
    g["workflow.creationTimestamp"] = created
    g["workflow.creationTimestamp.RFC3339"] = created
    if created:
        epoch_seconds = op.clock.datetime_at(op.clock.parse(created)).timestamp()
        g["workflow.creationTimestamp.s"] = str(int(epoch_seconds))
    annotations = meta.get("annotations") or {}
    if SCHEDULED_TIME_ANNOTATION in annotations:
        g["workflow.scheduledTime"] = str(annotations[SCHEDULED_TIME_ANNOTATION])
    if spec.get("priority") is not None:
        g["workflow.priority"] = str(spec["priority"])
    params = (spec.get("arguments") or {}).get("parameters") or []
    normalised = [
        {**p, "value": param_text(p["value"])} if "value" in p else dict(p) for p in params
    ]
    g["workflow.parameters"] = g["workflow.parameters.json"] = json.dumps(
        normalised, separators=(",", ":")
    )
    for param in normalised:
        if param.get("value") is not None:
            g[f"workflow.parameters.{param['name']}"] = str(param["value"])
            continue
        ref = (param.get("valueFrom") or {}).get("configMapKeyRef")
        if ref is None:
            op.global_error = op.global_error or (
                "either value or valueFrom must be specified in order to set global parameter "
                f"{param['name']}"
            )
            continue
        value, error, _ = op.configmap_value(ref)
        if value is None:
            default = (param.get("valueFrom") or {}).get("default")
            if default is None:
                op.global_error = op.global_error or (
                    f"failed to set global parameter {param['name']} from configmap with name "
                    f"{ref.get('name')} and key {ref.get('key')}: {error}"
                )
                continue
            value = param_text(default)
        g[f"workflow.parameters.{param['name']}"] = value
    for key, value in annotations.items():
        g[f"workflow.annotations.{key}"] = str(value)
    for key, value in (meta.get("labels") or {}).items():
        g[f"workflow.labels.{key}"] = str(value)
    g["workflow.annotations"] = json.dumps(annotations, separators=(",", ":"), sort_keys=True)
    g["workflow.labels"] = json.dumps(
        meta.get("labels") or {}, separators=(",", ":"), sort_keys=True
    )
    for param in (op.status.get("outputs") or {}).get("parameters") or []:
        if param.get("value") is not None:
            g[f"workflow.outputs.parameters.{param['name']}"] = str(param["value"])


def mark_phase(op: Operation, phase: str, message: str = "") -> None:
    """``markWorkflowPhase``: phase, labels, ``startedAt``, message, ``finishedAt``, conditions."""
    status, meta = op.status, op.workflow["metadata"]
    labels = meta.setdefault("labels", {})
    if status.get("phase") != phase:
        status["phase"] = phase
        labels[PHASE_LABEL] = phase
        labels.setdefault(COMPLETED_LABEL, "false")
        if phase == "Running":
            _event(op, "Normal", "WorkflowRunning", "Workflow Running")
        elif phase == "Succeeded":
            _event(op, "Normal", "WorkflowSucceeded", "Workflow completed")
        elif phase in ("Failed", "Error"):
            _event(op, "Warning", "WorkflowFailed", message)
    if not status.get("startedAt") and phase != "Pending":
        status["startedAt"] = op.stamp()
    status.setdefault("startedAt", None)
    status.setdefault("finishedAt", None)
    if message:
        status["message"] = message
    else:
        status.pop("message", None)
    if phase == "Error":
        root = op.nodes.by_id.get(op.name)
        if root is not None and root.get("phase") == "Running":
            op.nodes.mark(op.name, "Error", "Workflow operation error")
    if phase in FINISHED:
        status["finishedAt"] = op.stamp()
        labels[COMPLETED_LABEL] = "true"
        set_condition(status, "Completed", "True")


def set_condition(status: Obj, ctype: str, value: str) -> None:
    conditions = status.setdefault("conditions", [])
    for condition in conditions:
        if condition.get("type") == ctype:
            condition["status"] = value
            return
    conditions.append({"type": ctype, "status": value})


def _event(op: Operation, kind: str, reason: str, message: str) -> None:
    op.host.state.events.record(op.workflow, kind, reason, message, component=COMPONENT)


# --- pods ----------------------------------------------------------------------------------------


def _delete_pod(op: Operation, pod: Obj) -> None:
    meta = pod["metadata"]
    with contextlib.suppress(ApiError):
        op.host.state.store.delete(PODS, meta["namespace"], meta["name"], "Background")


def reconcile_pods(op: Operation) -> None:
    """``podReconciliation`` and ``applyExecutionControl``."""
    nodes = op.nodes
    for node in list(nodes.values()):
        if node.get("type") != "Pod" or fulfilled(node):
            continue
        pod = op.pods.get(node["id"])
        if pod is None:
            if node.get("phase") != "Pending":
                nodes.mark(node["name"], "Error", "pod deleted")
            continue
        tmpl = op.pod_templates.get(node["id"]) or op.template_of(node) or {}

        # Whether the result is wanted is asked only once the node finishes (it reads templates).
        def result(pod: Obj = pod, node: Obj = node) -> str | None:
            return op.host.stdout(pod) if op.result_referenced(node) else None

        if tmpl.get("resource") is not None and not _resource_action(op, node, pod, tmpl):
            continue
        updated = assess(node, pod, tmpl, functools.partial(op.host.files, pod), op.stamp(), result)
        if tmpl.get("resource") is not None and fulfilled(updated):
            updated = _resource_outcome(op, updated, tmpl)
        if updated != node:
            nodes.by_id[node["id"]] = updated
            if fulfilled(updated):
                op.add_global_outputs(updated.get("outputs"))
        for container, phase, message in container_nodes(pod):
            child = nodes.get(f"{node['name']}.{container}")
            if child is not None and child.get("phase") != phase:
                nodes.mark(child["name"], phase, message or None)
        phase = (pod.get("status") or {}).get("phase") or "Pending"
        if fulfilled(updated) or phase not in ("Pending", "Running"):
            continue
        on_exit_pod = (pod["metadata"].get("labels") or {}).get(ON_EXIT_LABEL) == "true"
        if not op.should_execute(on_exit_pod):
            _delete_pod(op, pod)
            nodes.mark(node["name"], "Failed", f"workflow shutdown with strategy:  {op.shutdown}")
        elif op.deadline_passed() and not on_exit_pod:
            _delete_pod(op, pod)
            nodes.mark(node["name"], "Failed", DEADLINE_EXCEEDED)
    running = any(n.get("type") == "Pod" and n.get("phase") == "Running" for n in nodes.values())
    set_condition(op.status, "PodRunning", "True" if running else "False")


def _resource_action(op: Operation, node: Obj, pod: Obj, tmpl: Obj) -> bool:
    """A resource template's action, once its pod has succeeded; False while its
    ``successCondition`` is waited for (the node stays Running)."""
    if (pod.get("status") or {}).get("phase") != "Succeeded":
        return True
    host = op.host
    done = host.resource_objects.get(node["id"])
    state = host.state
    if done is None:
        obj, error = resource.perform(state.store, state.registry, op.workflow, tmpl["resource"])
        if error:
            host.resource_objects[node["id"]] = ("", "", "", "", error)
            return True
        if obj is None:
            host.resource_objects[node["id"]] = ("", "", "", "", "")
            return True
        meta = obj["metadata"]
        done = (
            str(obj.get("apiVersion", "")),
            str(obj.get("kind", "")),
            str(meta.get("namespace") or ""),
            str(meta["name"]),
            "",
        )
        host.resource_objects[node["id"]] = done
    api_version, kind, namespace, name, _ = done
    if not kind:
        return True
    target = state.registry.by_kind(api_version, kind)
    current = state.store.peek(target, namespace, name) if target else None
    try:
        message = resource.check(state.store, current or {}, tmpl["resource"])
    except resource.Pending:
        if node.get("phase") != "Running":
            op.nodes.mark(node["name"], "Running")
        op.wake(op.now + 1.0)
        return False
    if message:
        host.resource_objects[node["id"]] = (*done[:4], message)
    return True


def _resource_outcome(op: Operation, node: Obj, tmpl: Obj) -> Obj:
    """The node of a resource template whose pod has finished: the action's error or outputs."""
    api_version, kind, namespace, name, error = op.host.resource_objects.get(
        node["id"], ("", "", "", "", "")
    )
    updated = dict(node)
    if node.get("phase") != "Succeeded":
        return updated
    if error:
        updated["phase"], updated["message"] = "Failed", error
        return updated
    target = op.host.state.registry.by_kind(api_version, kind) if kind else None
    obj = op.host.state.store.peek(target, namespace, name) if target else None
    params = resource.outputs(tmpl, obj)
    if params:
        updated["outputs"] = {**(updated.get("outputs") or {}), "parameters": params}
    return updated


def fail_unstarted(op: Operation) -> None:
    """``failNodesWithoutCreatedPodsAfterDeadlineOrShutdown``."""
    for node in list(op.nodes.values()):
        if fulfilled(node):
            continue
        exit_handler = op.is_exit_handler(node)
        active_suspend = node.get("type") == "Suspend"
        if op.shutdown and not op.should_execute(exit_handler) and active_suspend:
            op.nodes.mark(node["name"], "Failed", f"Stopped with strategy '{op.shutdown}'")
            continue
        pending = node.get("phase") == "Pending" or active_suspend
        if op.deadline_passed() and not exit_handler and pending:
            op.nodes.mark(node["name"], "Failed", DEADLINE_EXCEEDED)


# --- operate -------------------------------------------------------------------------------------


def operate(op: Operation, find: Any) -> None:
    """Advance the Workflow as far as it can go at this instant."""
    set_globals(op)
    first = not op.status.get("phase") or op.status.get("phase") == "Pending"
    annotations = op.workflow["metadata"].setdefault("annotations", {})
    if first:
        annotations.setdefault(POD_NAME_FORMAT_ANNOTATION, "v2")
        mark_phase(op, "Running")
        try:
            validate(op.spec, find)
        except Invalid as exc:
            mark_phase(op, "Failed", f"invalid spec: {exc}")
            return
    if op.global_error:
        mark_phase(op, "Error", op.global_error)
        return
    ads = op.spec.get("activeDeadlineSeconds")
    if ads is not None and op.status.get("startedAt"):
        op.deadline = op.clock.parse(op.status["startedAt"]) + float(ads)
        op.wake(op.deadline)
    if not first:
        reconcile_pods(op)
        fail_unstarted(op)
    if (op.workflow.get("spec") or {}).get("suspend"):
        return
    op.active_pods = op.count_active_pods()
    try:
        root = op.execute_template(
            op.name,
            {"template": op.spec.get("entrypoint")},
            op.local,
            op.spec.get("arguments"),
            "",
        )
    except ParallelismReached:
        return
    except ExecError as exc:
        if op.status.get("phase") not in FINISHED:
            mark_phase(op, "Error", f"error in entry template execution: {exc.message}")
        return
    if not fulfilled(root):
        return
    workflow_phase = _NODE_TO_WORKFLOW.get(str(root.get("phase")), "Error")
    exit_node = None
    if op.spec.get("onExit"):
        exit_name = on_exit_node_name(op.name)
        exit_node = op.nodes.get(exit_name)
        if exit_node is not None or op.should_execute(True):
            op.globals["workflow.status"] = workflow_phase
            op.globals["workflow.failures"] = _failures(op)
            try:
                exit_node = op.execute_template(
                    exit_name,
                    {"template": op.spec["onExit"]},
                    op.local,
                    op.spec.get("arguments"),
                    "",
                    on_exit=True,
                )
            except ParallelismReached:
                return
            except ExecError as exc:
                mark_phase(op, "Error", f"error in exit template execution : {exc.message}")
                return
            if not fulfilled(exit_node):
                return
    if root.get("phase") in ("Failed", "Error") and op.shutdown:
        message = f"Stopped with strategy '{op.shutdown}'"
    else:
        message = str(root.get("message") or "")
    if workflow_phase == "Succeeded":
        if exit_node is not None and exit_node.get("phase") in ("Failed", "Error"):
            mark_phase(op, str(exit_node["phase"]), str(exit_node.get("message") or ""))
        else:
            mark_phase(op, "Succeeded")
    else:
        mark_phase(op, workflow_phase, message)


def _failures(op: Operation) -> str:
    """``workflow.failures``: the failed nodes as JSON (quoted, as Argo passes it)."""
    failures = [
        {
            "displayName": n.get("displayName"),
            "message": n.get("message", ""),
            "templateName": n.get("templateName", ""),
            "phase": n.get("phase"),
            "podName": n.get("id"),
            "finishedAt": n.get("finishedAt"),
        }
        for n in op.nodes.values()
        if n.get("phase") in ("Failed", "Error")
    ]
    return json.dumps(json.dumps(failures, separators=(",", ":")))
