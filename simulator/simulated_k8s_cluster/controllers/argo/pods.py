"""Workflow pods: the pod Argo creates for a container template (``createWorkflowPod``) and the
node status it reads back from the pod (``assessNodeStatus``, ``inferFailedReason``), output
parameters included (what the ``wait`` container saves)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from typing import Any

from ...resources import ARGO_WORKFLOWS
from .names import (
    COMPLETED_LABEL,
    MAIN_CONTAINER,
    NODE_ID_ANNOTATION,
    NODE_NAME_ANNOTATION,
    ON_EXIT_LABEL,
    WORKFLOW_LABEL,
)
from .nodes import FULFILLED

Obj = dict[str, Any]

OUTPUTS_DIR = "/var/run/argo/outputs/parameters"
"""Where the emissary executor keeps copies of output parameter files."""

SCRIPT_SOURCE_PATH = "/argo/staging/script"
"""Where Argo's init container writes a script template's source; the command runs it."""

ARGOEXEC_IMAGE = "quay.io/argoproj/argoexec:latest"
"""The image of a resource template's pod."""

RESULT_LIMIT = 256 * 1024
"""The most of a ``main`` container's output Argo keeps as ``outputs.result`` (the end of it)."""


def build_pod(
    workflow: Obj,
    spec: Obj,
    node: Obj,
    template: Obj,
    name: str,
    on_exit: bool,
    deadline_seconds: int | None,
) -> Obj:
    """The pod of a container node: one ``main`` container, owned by the Workflow."""
    meta = workflow["metadata"]
    tmpl_meta = template.get("metadata") or {}
    pod_metadata = spec.get("podMetadata") or {}
    labels = {
        **(pod_metadata.get("labels") or {}),
        **(tmpl_meta.get("labels") or {}),
        WORKFLOW_LABEL: meta["name"],
        COMPLETED_LABEL: "false",
    }
    if on_exit:
        labels[ON_EXIT_LABEL] = "true"
    annotations = {
        **(pod_metadata.get("annotations") or {}),
        **(tmpl_meta.get("annotations") or {}),
        NODE_NAME_ANNOTATION: node["name"],
        NODE_ID_ANNOTATION: node["id"],
    }
    if template.get("containerSet") is not None:
        container_set = template["containerSet"]
        shared_mounts = container_set.get("volumeMounts") or []
        containers = []
        for declared in container_set.get("containers") or []:
            one = {k: copy.deepcopy(v) for k, v in declared.items() if k != "dependencies"}
            if shared_mounts:
                one["volumeMounts"] = [*(one.get("volumeMounts") or []), *shared_mounts]
            containers.append(one)
        pod_spec: Obj = {"restartPolicy": "Never", "containers": containers}
    elif template.get("script") is not None:
        # A script template: the source is staged in a file that the command runs.
        container = {k: copy.deepcopy(v) for k, v in template["script"].items() if k != "source"}
        container["args"] = [*(container.get("args") or []), SCRIPT_SOURCE_PATH]
        # No init container here to stage the source: main carries the template, as
        # Argo's init-less pods do.
        container["env"] = [
            *(container.get("env") or []),
            {"name": "ARGO_TEMPLATE", "value": json.dumps(template, separators=(",", ":"))},
        ]
    elif template.get("resource") is not None:
        # argoexec runs kubectl; the simulated controller does the action (see resource.py)
        action = str(template["resource"].get("action") or "")
        container = {"image": ARGOEXEC_IMAGE, "command": ["argoexec", "resource", action]}
    else:
        container = copy.deepcopy(template.get("container") or {})
    if template.get("containerSet") is None:
        container["name"] = MAIN_CONTAINER
        pod_spec = {"restartPolicy": "Never", "containers": [container]}
    node_selector = {**(spec.get("nodeSelector") or {}), **(template.get("nodeSelector") or {})}
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    for key, wf_key in (
        ("tolerations", "tolerations"),
        ("affinity", "affinity"),
        ("schedulerName", "schedulerName"),
        ("priorityClassName", "podPriorityClassName"),
        ("securityContext", "securityContext"),
        ("serviceAccountName", "serviceAccountName"),
        ("hostAliases", "hostAliases"),
    ):
        value = template.get(key) or spec.get(wf_key)
        if value:
            pod_spec[key] = copy.deepcopy(value)
    if spec.get("imagePullSecrets"):
        pod_spec["imagePullSecrets"] = copy.deepcopy(spec["imagePullSecrets"])
    volumes = [*(spec.get("volumes") or []), *(template.get("volumes") or [])]
    if volumes:
        pod_spec["volumes"] = copy.deepcopy(volumes)
    deadlines = [d for d in (template.get("activeDeadlineSeconds"), deadline_seconds) if d]
    if deadlines:
        pod_spec["activeDeadlineSeconds"] = int(min(int(str(d)) for d in deadlines))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": ARGO_WORKFLOWS.api_version,
                    "kind": ARGO_WORKFLOWS.kind,
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": pod_spec,
    }


# --- reading a pod back --------------------------------------------------------------------------


def _main_status(pod: Obj) -> Obj | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == MAIN_CONTAINER:
            return dict(status)
    return None


def pending_reason(pod: Obj) -> str:
    """``getPendingReason``: a waiting container's reason, else ``Unschedulable: <message>``."""
    status = pod.get("status") or {}
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting")
        if waiting:
            reason, message = waiting.get("reason", ""), waiting.get("message", "")
            return f"{reason}: {message}" if message else str(reason)
    for condition in status.get("conditions") or []:
        if condition.get("reason") == "Unschedulable":
            message = condition.get("message", "")
            return f"Unschedulable: {message}" if message else "Unschedulable"
    return ""


def failed_reason(pod: Obj) -> tuple[str, str]:
    """``inferFailedReason``: (phase, message) of a Failed pod."""
    status = pod.get("status") or {}
    if status.get("message"):
        return "Failed", str(status["message"])
    containers = [
        *(status.get("initContainerStatuses") or []),
        *sorted(
            status.get("containerStatuses") or [],
            key=lambda c: 0 if c.get("name") == MAIN_CONTAINER else 1,
        ),
    ]
    if not containers:
        meta = pod["metadata"]
        return "Failed", (
            f"can't find failed message for pod {meta['name']} namespace {meta.get('namespace')}"
        )
    main_succeeded = False
    for container in containers:
        state = container.get("state") or {}
        if state.get("waiting"):
            waiting = state["waiting"]
            return "Error", (
                f"Pod failed before {container.get('name')} container starts due to "
                f"{waiting.get('reason', '')}: {waiting.get('message', '')}"
            )
        terminated = state.get("terminated")
        if not terminated:
            continue
        code = int(terminated.get("exitCode", 0))
        if code == 0:
            main_succeeded = main_succeeded or container.get("name") == MAIN_CONTAINER
            continue
        message = f"{terminated.get('reason', 'Error')} (exit code {code})"
        if terminated.get("message"):
            message = f"{message}: {terminated['message']}"
        if container.get("name") == MAIN_CONTAINER:
            return "Failed", message
        if code not in (137, 143):
            return "Failed", message
    if main_succeeded:
        return "Failed", "pod failed: wait container did not complete successfully"
    return "Failed", "pod failed: neither main nor wait container completed successfully"


def _finished_at(pod: Obj, now: str) -> str:
    latest = ""
    status = pod.get("status") or {}
    for container in [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]:
        state = container.get("state") or {}
        if state.get("running"):
            return now
        finished = (state.get("terminated") or {}).get("finishedAt") or ""
        latest = max(latest, str(finished))
    return latest or now


def read_outputs(template: Obj, files: Mapping[str, str]) -> tuple[list[Obj], str | None]:
    """Output parameters from the files the main container wrote; the second value is the
    ``wait`` container's error when a file is missing and has no ``valueFrom.default``."""
    params: list[Obj] = []
    error = None
    for declared in (template.get("outputs") or {}).get("parameters") or []:
        param = copy.deepcopy(declared)
        value_from = declared.get("valueFrom") or {}
        path = value_from.get("path")
        if path is None:
            if declared.get("value") is not None:
                params.append(param)
            continue
        if path in files:
            value = files[path]
            if value.endswith("\n"):
                value = value[:-1]
            param["value"] = value
        elif value_from.get("default") is not None:
            param["value"] = str(value_from["default"])
        elif error is None:
            error = f"open {OUTPUTS_DIR}{path}: no such file or directory"
            continue
        else:
            continue
        params.append(param)
    return params, error


def container_nodes(pod: Obj) -> list[tuple[str, str, str]]:
    """(container, phase, message) of each container of a containerSet pod, as Argo's
    podReconciliation marks the ``<node>.<container>`` nodes."""
    status = pod.get("status") or {}
    out: list[tuple[str, str, str]] = []
    for c in status.get("containerStatuses") or []:
        state = c.get("state") or {}
        terminated = state.get("terminated")
        if terminated is not None:
            code = int(terminated.get("exitCode", 0))
            message = (
                f"{c['name']}: {terminated.get('reason', '')} (exit code {code}): "
                f"{terminated.get('message', '')}"
            )
            if code == 0:
                out.append((c["name"], "Succeeded", ""))
            else:
                out.append((c["name"], "Error" if code == 64 else "Failed", message))
        elif status.get("phase") == "Failed":
            out.append((c["name"], "Failed", "Pod Failed whilst container running"))
        elif state.get("waiting") is not None:
            out.append((c["name"], "Pending", ""))
        elif state.get("running") is not None:
            out.append((c["name"], "Running", ""))
    return out


def assess(
    node: Obj,
    pod: Obj,
    template: Obj,
    files: Callable[[], Mapping[str, str]],
    now: str,
    stdout: Callable[[], str | None] | None = None,
) -> Obj:
    """``assessNodeStatus``: the node as the pod shows it (a copy). ``stdout`` gives the main
    container's output once the node finishes, or None when the Workflow does not read this
    node's ``outputs.result`` (Argo's ``includeScriptOutput``)."""
    updated = copy.deepcopy(node)
    status = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    message = node.get("message", "")
    outputs = copy.deepcopy(node.get("outputs") or {})
    if phase == "Pending":
        new_phase, message = "Pending", pending_reason(pod)
    elif phase == "Running":
        new_phase = "Running"
    elif phase == "Succeeded":
        new_phase = "Succeeded"
        params, error = read_outputs(template, files())
        if params:
            outputs["parameters"] = params
        if error:
            new_phase, message = "Error", f"Error (exit code 1): {error}"
    elif phase == "Failed":
        new_phase, message = failed_reason(pod)
        params, _ = read_outputs(template, files())
        if params:
            outputs["parameters"] = params
    else:
        new_phase, message = "Error", f"Unexpected pod phase for {pod['metadata']['name']}: {phase}"
    result = stdout() if stdout is not None and new_phase in FULFILLED else None
    if result is not None:
        if result.endswith("\n"):  # Argo trims one newline
            result = result[:-1]
        outputs["result"] = result[-RESULT_LIMIT:]
    main = _main_status(pod)
    terminated = ((main or {}).get("state") or {}).get("terminated")
    if terminated is not None:
        outputs["exitCode"] = str(terminated.get("exitCode", 0))
    was_pending = node.get("phase") == "Pending"
    if was_pending and new_phase not in ("Pending", "Failed", "Error"):
        message = "" if message == node.get("message", "") else message
    updated["phase"] = new_phase
    if message:
        updated["message"] = message
    else:
        updated.pop("message", None)
    if outputs:
        updated["outputs"] = outputs
    host = (pod.get("spec") or {}).get("nodeName")
    if host:
        updated["hostNodeName"] = host
    if new_phase in FULFILLED and not updated.get("finishedAt"):
        updated["finishedAt"] = _finished_at(pod, now)
    return updated
