"""Names Argo derives: node ids, pod names (``GeneratePodName`` v2), display names, labels."""

from __future__ import annotations

import re

WORKFLOW_LABEL = "workflows.argoproj.io/workflow"
COMPLETED_LABEL = "workflows.argoproj.io/completed"
PHASE_LABEL = "workflows.argoproj.io/phase"
ON_EXIT_LABEL = "workflows.argoproj.io/on-exit"
NODE_NAME_ANNOTATION = "workflows.argoproj.io/node-name"
NODE_ID_ANNOTATION = "workflows.argoproj.io/node-id"
POD_NAME_FORMAT_ANNOTATION = "workflows.argoproj.io/pod-name-format"
SCHEDULED_TIME_ANNOTATION = "workflows.argoproj.io/scheduled-time"
WORKFLOW_TEMPLATE_LABEL = "workflows.argoproj.io/workflow-template"
CLUSTER_WORKFLOW_TEMPLATE_LABEL = "workflows.argoproj.io/cluster-workflow-template"
MAIN_CONTAINER = "main"

MAX_POD_NAME_LENGTH = 253
POD_NAME_HASH_LENGTH = 10
MAX_POD_NAME_PREFIX = MAX_POD_NAME_LENGTH - POD_NAME_HASH_LENGTH - 1
"""``maxK8sResourceNameLength - k8sNamingHashLength - 1``: 242 characters."""

_STEP_OR_DAG_SEPARATOR = re.compile(r"^(\[\d+\])?\.")


def fnv32a(text: str) -> int:
    """FNV-1a, 32 bits, of the UTF-8 bytes (Go's ``hash/fnv`` ``New32a``)."""
    value = 0x811C9DC5
    for byte in text.encode("utf-8"):
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def node_id(workflow_name: str, node_name: str) -> str:
    """``Workflow.NodeID``: the Workflow name for the root, else ``<wf>-<fnv32a(name)>``."""
    if node_name == workflow_name:
        return workflow_name
    return f"{workflow_name}-{fnv32a(node_name)}"


def pod_name(workflow_name: str, node_name: str, template_name: str) -> str:
    """``GeneratePodName`` (v2): ``<wf>-<template>-<fnv32a(node name)>``, prefix <= 242."""
    if node_name == workflow_name:
        return workflow_name
    prefix = workflow_name
    if template_name and ".inline" not in node_name:  # an inline template has no name
        prefix = f"{workflow_name}-{template_name}"
    return f"{prefix[:MAX_POD_NAME_PREFIX]}-{fnv32a(node_name)}"


def display_name(node_name: str, boundary_name: str | None) -> str:
    """``initializeNode``: the name without its boundary's name and a leading ``[i].`` / ``.``."""
    if boundary_name is None:
        return node_name
    shown = node_name[len(boundary_name) :] if node_name.startswith(boundary_name) else node_name
    return _STEP_OR_DAG_SEPARATOR.sub("", shown, count=1)


def on_exit_node_name(workflow_name: str) -> str:
    """``GenerateOnExitNodeName``."""
    return f"{workflow_name}.onExit"


def step_or_task_name(node_name: str) -> str:
    """``getStepOrDAGTaskName``: the step or task a node runs, without the fan-out and retry
    suffixes and the enclosing nodes (``wf[0].fanout(0:1)(0)`` → ``fanout``)."""
    name = node_name
    opener = ""
    for i in range(len(name) - 1, -1, -1):
        char = name[i]
        if char == opener:
            opener = ""
        elif opener:
            continue
        elif char == ")":
            opener = "("
        elif char == "]":
            opener = "["
        else:
            name = name[: i + 1]
            break
    return name.rpartition(".")[2]
