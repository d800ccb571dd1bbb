"""Interpret an Argo ``Workflow`` (``argoproj.io/v1alpha1``) into a :class:`WorkflowState`.

The Workflow's own status says everything we need: its phase and message, ``progress`` ("N/M"
pods done), and ``nodes``, the tree of Steps / StepGroup / DAG / TaskGroup / Retry nodes over
the Pod (and Suspend, HTTP, Plugin, Container) nodes that do the work. Node ids and pod names
are derived from node names with FNV-32a, so a pod can be named without listing pods.

Decisions (see the functions for details):

- ``workflow is None`` → finished, not succeeded, reason ``WorkflowDeleted``. So is an
  unfinished Workflow with a ``metadata.deletionTimestamp``: the controller will not finish
  it and its pods (owned by the Workflow) go with it. A finished Workflow being deleted (TTL,
  cleanup) keeps its outcome.
- Finished means ``status.finishedAt`` set and phase ``Succeeded``/``Failed``/``Error``.
  Phase ``""`` means the controller has not seen the Workflow yet; ``Pending`` may carry why
  it waits (controller parallelism, a workflow-level semaphore or mutex).
- A stopped or terminated Workflow ends ``Failed`` with "Stopped with strategy 'Stop'" or
  "'Terminate'"; ``reason`` then is ``Stopped`` / ``Terminated`` (``spec.shutdown`` is the
  fallback when the message says something else).
- A Workflow the controller refused to run ends ``Failed`` with "invalid spec: …" before any
  node ran: ``rejected`` says so (the same spec is refused on every submission).
- Nodes may be in ``status.compressedNodes`` (base64 of gzip of the JSON; zstd or brotli when
  the controller is configured so) or offloaded to the Argo Server's database
  (``status.offloadNodeStatusVersion``). Undecodable or offloaded nodes leave ``nodes`` empty
  and say so in ``nodes_note``; they never raise.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import importlib
import json
import re
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ._objects import meta, parse_time, spec
from .summary import MAX_LINE_CHARS, MAX_TOTAL_CHARS, _tail

WORKFLOW_LABEL = "workflows.argoproj.io/workflow"
"""Label on every pod of a Workflow: the Workflow's name."""
NODE_ID_ANNOTATION = "workflows.argoproj.io/node-id"
"""Annotation on a Workflow pod: the id of its node."""
NODE_NAME_ANNOTATION = "workflows.argoproj.io/node-name"
"""Annotation on a Workflow pod: the (full) name of its node."""
POD_NAME_FORMAT_ANNOTATION = "workflows.argoproj.io/pod-name-format"
"""Annotation on a Workflow: how its pods are named, ``v1`` (node id) or ``v2``."""

FINISHED_PHASES = ("Succeeded", "Failed", "Error")
"""Phases a Workflow ends in; it has ended once it also has ``status.finishedAt``."""
REJECTED_PREFIX = "invalid spec:"
"""How the Argo controller's message starts when it refuses a Workflow's spec."""
FAILED_NODE_PHASES = ("Failed", "Error")
GROUP_NODE_TYPES = ("Steps", "StepGroup", "DAG", "TaskGroup", "Retry")
"""Node types that only group other nodes: they fail because a child failed."""

MAX_RUNNING_SHOWN = 2
"""Running nodes named in the status line; the others are counted."""
MAX_PENDING_DETAIL = 120

# Kubernetes allows 253 characters; the pod name keeps 10 for the hash and one for the dash.
_MAX_POD_NAME_PREFIX = 253 - 10 - 1

_SHUTDOWN = re.compile(
    r"(?:Stopped with strategy '|workflow shutdown with strategy:\s*)(Stop|Terminate)\b"
)
_DEADLINE = re.compile(
    r"exceeded its deadline|longer than the specified deadline|Max duration limit exceeded",
    re.IGNORECASE,
)
_WAITING_QUIET = {"ContainerCreating", "PodInitializing"}
_IMAGE_PULL = {"ErrImagePull", "ImagePullBackOff"}


# --- nodes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkflowNode:
    """One entry of ``status.nodes``.

    ``template_name`` is the template that ran: ``templateRef.template`` when the node came
    from a WorkflowTemplate reference, else ``templateName`` (what Argo names pods after).
    ``parameters`` are the node's output parameters that have a value; ``exit_code`` is
    ``outputs.exitCode``. ``workflow_name`` is the Workflow the node belongs to (it makes
    :attr:`relative_name`).
    """

    id: str
    name: str
    display_name: str
    type: str
    phase: str
    template_name: str
    message: str
    boundary_id: str
    children: tuple[str, ...]
    started_at: datetime | None
    finished_at: datetime | None
    parameters: Mapping[str, str]
    exit_code: str | None
    host_node_name: str
    workflow_name: str = field(default="", compare=False)

    @property
    def relative_name(self) -> str:
        """The name without the Workflow's name: ``[0].task1``, ``A.B``; ``""`` for the root."""
        prefix = self.workflow_name or _workflow_name_from_id(self.id, self.name)
        if not prefix or not self.name.startswith(prefix):
            return self.name
        rest = self.name[len(prefix) :]
        return rest[1:] if rest.startswith(".") else rest

    @property
    def label(self) -> str:
        """How to name the node to a person: its relative name, or the display name (root)."""
        return self.relative_name or self.display_name or self.name


def _workflow_name_from_id(node_id: str, name: str) -> str:
    """The Workflow name, guessed from a node id ``<wf>-<fnv32a>`` (the root's id is the name)."""
    if node_id == name:
        return name
    head, sep, tail = node_id.rpartition("-")
    return head if sep and tail.isdigit() else ""


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _parameters(outputs: Mapping[str, Any] | None) -> dict[str, str]:
    found: dict[str, str] = {}
    for param in (outputs or {}).get("parameters") or []:
        if isinstance(param, Mapping) and param.get("name") and param.get("value") is not None:
            found[str(param["name"])] = _text(param["value"])
    return found


def _node(node_id: str, raw: Mapping[str, Any], workflow_name: str) -> WorkflowNode:
    outputs = raw.get("outputs") if isinstance(raw.get("outputs"), Mapping) else {}
    ref = raw.get("templateRef") if isinstance(raw.get("templateRef"), Mapping) else None
    template = _text((ref or {}).get("template")) if ref else _text(raw.get("templateName"))
    exit_code = (outputs or {}).get("exitCode")
    return WorkflowNode(
        id=_text(raw.get("id")) or node_id,
        name=_text(raw.get("name")),
        display_name=_text(raw.get("displayName")),
        type=_text(raw.get("type")),
        phase=_text(raw.get("phase")),
        template_name=template,
        message=_text(raw.get("message")),
        boundary_id=_text(raw.get("boundaryID")),
        children=tuple(_text(c) for c in raw.get("children") or []),
        started_at=parse_time(raw.get("startedAt")),
        finished_at=parse_time(raw.get("finishedAt")),
        parameters=_parameters(outputs),
        exit_code=None if exit_code is None else _text(exit_code),
        host_node_name=_text(raw.get("hostNodeName")),
        workflow_name=workflow_name,
    )


# --- compressed and offloaded nodes -----------------------------------------------------------


def _optional_decoder(*modules: str) -> Callable[[bytes], bytes] | None:
    """``decompress`` of the first of these modules that can be imported, if any."""
    for module in modules:
        try:
            found = importlib.import_module(module)
        except ImportError:
            continue
        decompress = getattr(found, "decompress", None)
        if callable(decompress):
            return decompress
    return None


def _decompress(raw: bytes) -> tuple[bytes | None, str]:
    """The decompressed bytes and ``""``, or None and why not.

    gzip (the default) is told by its magic bytes, as is zstd; brotli has none, so it is what
    is left. zstd needs Python >= 3.14 (``compression.zstd``) or ``zstandard``, brotli the
    ``brotli`` package.
    """
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw), ""
        except (OSError, EOFError, zlib.error) as exc:
            return None, f"compressedNodes is not valid gzip ({exc})"
    if raw[:4] == b"\x28\xb5\x2f\xfd":
        codec, decoder = "zstd", _optional_decoder("compression.zstd", "zstandard")
    else:
        codec, decoder = "brotli", _optional_decoder("brotli", "brotlicffi")
    if decoder is None:
        return None, (
            f"compressedNodes uses a codec this Python cannot decode (not gzip; {codec}?)"
        )
    try:
        return decoder(raw), ""
    except Exception as exc:  # each codec has its own error type
        return None, f"compressedNodes could not be decompressed as {codec} ({exc})"


def decode_nodes(status: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], str]:
    """``status.nodes`` (decompressed from ``status.compressedNodes`` if need be) and a note.

    The note is ``""`` when the nodes are there (or there are none yet); otherwise it says that
    they are offloaded to the Argo Server's database (only the Argo Server can read them) or
    why ``compressedNodes`` could not be decoded. Never raises.
    """
    status = status or {}
    nodes = status.get("nodes")
    if isinstance(nodes, Mapping) and nodes:
        return {str(k): dict(v) for k, v in nodes.items() if isinstance(v, Mapping)}, ""
    compressed = status.get("compressedNodes")
    if isinstance(compressed, str) and compressed.strip():
        try:
            raw = base64.b64decode(compressed.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            return {}, f"compressedNodes is not valid base64 ({exc}); node status unknown"
        data, why = _decompress(raw)
        if data is None:
            return {}, why + "; node status unknown"
        try:
            decoded = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return {}, f"compressedNodes does not hold JSON ({exc}); node status unknown"
        if not isinstance(decoded, Mapping):
            return {}, "compressedNodes does not hold a map of nodes; node status unknown"
        return {str(k): dict(v) for k, v in decoded.items() if isinstance(v, Mapping)}, ""
    version = status.get("offloadNodeStatusVersion")
    if version:
        return {}, (
            f"node status is offloaded to the Argo Server's database (version {version}); "
            "only the Argo Server can read it"
        )
    return {}, ""


# --- names --------------------------------------------------------------------------------------


def _fnv32a(text: str) -> int:
    value = 0x811C9DC5
    for byte in text.encode("utf-8"):
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def node_id(workflow_name: str, node_name: str) -> str:
    """The id Argo gives a node: the Workflow name for the root, else ``<wf>-<fnv32a(name)>``."""
    if node_name == workflow_name:
        return workflow_name
    return f"{workflow_name}-{_fnv32a(node_name)}"


def pod_name(workflow_name: str, node: WorkflowNode, pod_name_format: str = "v2") -> str:
    """The name of a Pod node's pod, as the Argo controller generates it.

    ``v1``: the node id. ``v2`` (the default): the Workflow name for the root node, else
    ``<wf>-<template>-<fnv32a(node name)>``, with ``<wf>-<template>`` cut to 242 characters
    so the whole fits the 253 Kubernetes allows (no ``-<template>`` without a template).
    """
    if pod_name_format == "v1":
        return node.id
    if node.name == workflow_name:
        return workflow_name
    prefix = f"{workflow_name}-{node.template_name}" if node.template_name else workflow_name
    return f"{prefix[:_MAX_POD_NAME_PREFIX]}-{_fnv32a(node.name)}"


# --- the state ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkflowState:
    """What the waiting code needs from one snapshot of a Workflow.

    - ``exists``: False when the Workflow is gone. ``finished``: the outcome is decided
      (``finishedAt`` and a final phase; or deleted). ``succeeded``: finished with
      ``Succeeded``.
    - ``phase``, ``message``, ``progress``: as in ``status``; ``nodes`` by id, ``nodes_note``
      when they could not be read (offloaded, undecodable).
    - ``running``: labels (relative names; the display name for the root) of Pod nodes that
      run, in start order; ``pending``: those of Pod nodes waiting to start.
    - ``failed_nodes``: the nodes that explain a failure, in start order: failed or errored
      nodes none of whose children failed (a Pod, a Suspend..., not the Steps / DAG / Retry
      above it); of a Retry node only the last attempt counts, earlier attempts never do.
      Computed whatever the phase: a running Workflow, or one that tolerated a failure with
      ``continueOn``, may have some too.
    - ``outputs``: the Workflow's output parameters (``globalName``); ``node_outputs``: label →
      output parameters, for nodes that have any.
    - ``reason``: ``""`` while not finished; ``Succeeded``, ``Failed``, ``Error``, ``Stopped``,
      ``Terminated``, ``DeadlineExceeded`` or ``WorkflowDeleted``.
    - ``status_line``: one line for the task log that changes only when progress, the running
      nodes, or why nodes wait changes.
    - ``pod_name_format``: from the ``workflows.argoproj.io/pod-name-format`` annotation.
    """

    name: str
    namespace: str
    exists: bool
    phase: str
    finished: bool
    succeeded: bool
    message: str
    progress: str
    nodes: Mapping[str, WorkflowNode]
    nodes_note: str
    running: tuple[str, ...]
    failed_nodes: tuple[WorkflowNode, ...]
    outputs: Mapping[str, str]
    node_outputs: Mapping[str, Mapping[str, str]]
    reason: str
    status_line: str
    pending: tuple[str, ...] = ()
    pod_name_format: str = "v2"

    @property
    def rejected(self) -> bool:
        """The controller refused the Workflow's spec ("invalid spec: …"): submitting the same
        spec again fails the same way."""
        return (
            self.exists
            and self.finished
            and not self.succeeded
            and self.message.startswith(REJECTED_PREFIX)
        )

    def pod_name(self, node: WorkflowNode) -> str:
        """The pod of a node of this Workflow (see :func:`pod_name`)."""
        return pod_name(self.name, node, self.pod_name_format)


_EPOCH_MAX = datetime.max.replace(tzinfo=timezone.utc)


def _start_key(node: WorkflowNode) -> tuple[datetime, datetime, str]:
    return (node.started_at or _EPOCH_MAX, node.finished_at or _EPOCH_MAX, node.name)


def _failed_nodes(nodes: Mapping[str, WorkflowNode]) -> tuple[WorkflowNode, ...]:
    """The failed nodes that explain a failure: leaves first, then groups, each in start order.

    Every failed Pod (or Suspend, HTTP, Plugin...) node counts, except attempts of a Retry node
    other than its last and the Container nodes of a container-set Pod (the Pod stands for
    them). A failed group node counts only when nothing inside it failed: for a Steps or DAG
    node, no counted failed node has it on its ``boundaryID`` chain; for a StepGroup or
    TaskGroup, no child failed; for a Retry node, its last attempt did not fail.
    """
    superseded: set[str] = set()
    inside_pod: set[str] = set()
    for node in nodes.values():
        if node.type == "Retry":
            superseded.update(node.children[:-1])
        elif node.type == "Pod":
            inside_pod.update(node.children)
    failed = [
        node
        for node in nodes.values()
        if node.phase in FAILED_NODE_PHASES
        and node.id not in superseded
        and not (node.type == "Container" and node.id in inside_pod)
    ]
    failed_ids = {node.id for node in failed}

    bounding: set[str] = set()  # Steps / DAG nodes with a failure inside
    for node in failed:
        seen: set[str] = set()
        boundary = node.boundary_id
        while boundary and boundary not in seen:
            seen.add(boundary)
            bounding.add(boundary)
            boundary = nodes[boundary].boundary_id if boundary in nodes else ""

    def explained(node: WorkflowNode) -> bool:
        if node.type == "Retry":
            return bool(node.children) and node.children[-1] in failed_ids
        if node.type in ("StepGroup", "TaskGroup"):
            return any(child in failed_ids for child in node.children)
        return node.id in bounding

    found = [n for n in failed if n.type not in GROUP_NODE_TYPES or not explained(n)]
    found.sort(key=lambda n: (n.type in GROUP_NODE_TYPES, _start_key(n)))
    return tuple(found)


def _one_line(text: str, limit: int = MAX_PENDING_DETAIL) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _pending_detail(nodes: Iterable[WorkflowNode]) -> str:
    """Why Pending pods wait, from the first one with a telling message.

    The controller writes a waiting container's ``reason: message`` or the scheduler's
    ``Unschedulable: 0/3 nodes are available: …``. ``ContainerCreating`` and
    ``PodInitializing`` tell nothing; image-pull errors are named without their changing
    details (the kubelet flips between ``ErrImagePull`` and ``ImagePullBackOff``).
    """
    for node in nodes:
        reason, _, detail = node.message.partition(":")
        reason = reason.strip()
        if not node.message or reason in _WAITING_QUIET:
            continue
        if reason in _IMAGE_PULL:
            return "cannot pull the image"
        if reason == "Unschedulable":
            # The preemption half of the scheduler's message repeats the first.
            detail = detail.split(" preemption:")[0].strip().rstrip(".")
            return _one_line(f"Unschedulable: {detail}" if detail else reason)
        return _one_line(node.message)
    return ""


def _running_line(
    progress: str, running: list[WorkflowNode], pending: list[WorkflowNode], suspended: list[str]
) -> str:
    head = f"Running {progress}" if progress else "Running"
    parts = []
    if running:
        names = ", ".join(n.label for n in running[:MAX_RUNNING_SHOWN])
        more = len(running) - MAX_RUNNING_SHOWN
        parts.append(f"running {names}" + (f" (+{more} more)" if more > 0 else ""))
    if pending:
        detail = _pending_detail(pending)
        parts.append(f"{len(pending)} pending" + (f" ({detail})" if detail else ""))
    if suspended:
        parts.append("suspended at " + ", ".join(suspended))
    return head + (": " + "; ".join(parts) if parts else "")


def _reason(phase: str, message: str, shutdown: str) -> str:
    if phase == "Succeeded":
        return "Succeeded"
    stopped = _SHUTDOWN.search(message)
    strategy = stopped.group(1) if stopped else shutdown
    if strategy == "Stop":
        return "Stopped"
    if strategy == "Terminate":
        return "Terminated"
    if _DEADLINE.search(message):
        return "DeadlineExceeded"
    return phase


def _deleted(name: str, namespace: str, line: str, **known: Any) -> WorkflowState:
    values: dict[str, Any] = {
        "exists": False,
        "phase": "",
        "message": "",
        "progress": "",
        "nodes": {},
        "nodes_note": "",
        "running": (),
        "failed_nodes": (),
        "outputs": {},
        "node_outputs": {},
    }
    values.update(known)
    return WorkflowState(
        name=name,
        namespace=namespace,
        finished=True,
        succeeded=False,
        reason="WorkflowDeleted",
        status_line=line,
        **values,
    )


def workflow_finished(workflow: Mapping[str, Any]) -> bool:
    """Whether the Workflow has ended: a final phase and ``finishedAt`` (a shutdown is refused)."""
    status: Mapping[str, Any] = workflow.get("status") or {}
    return _text(status.get("phase")) in FINISHED_PHASES and bool(status.get("finishedAt"))


def interpret_workflow(
    workflow: Mapping[str, Any] | None, *, name: str, namespace: str
) -> WorkflowState:
    """Interpret one snapshot of a Workflow (``None``: it no longer exists)."""
    if workflow is None:
        return _deleted(name, namespace, "Deleted: the Workflow no longer exists")
    m = meta(workflow)
    name = name or str(m.get("name") or "")
    namespace = namespace or str(m.get("namespace") or "")
    status: Mapping[str, Any] = workflow.get("status") or {}
    phase = _text(status.get("phase"))
    message = " ".join(_text(status.get("message")).split())
    progress = _text(status.get("progress"))
    finished = workflow_finished(workflow)
    pod_format = _text((m.get("annotations") or {}).get(POD_NAME_FORMAT_ANNOTATION)) or "v2"
    if pod_format not in ("v1", "v2"):
        pod_format = "v2"

    raw_nodes, note = decode_nodes(status)
    nodes = {nid: _node(nid, raw, name) for nid, raw in raw_nodes.items()}
    ordered = sorted(nodes.values(), key=_start_key)
    running = [n for n in ordered if n.type == "Pod" and n.phase == "Running"]
    pending = [n for n in ordered if n.type == "Pod" and n.phase == "Pending"]
    suspended = [n.label for n in ordered if n.type == "Suspend" and n.phase == "Running"]
    outputs = _parameters(
        status.get("outputs") if isinstance(status.get("outputs"), Mapping) else {}
    )
    node_outputs = {n.label: dict(n.parameters) for n in ordered if n.parameters}
    failed = _failed_nodes(nodes)

    known: dict[str, Any] = {
        "exists": True,
        "phase": phase,
        "message": message,
        "progress": progress,
        "nodes": nodes,
        "nodes_note": note,
        "running": tuple(n.label for n in running),
        "pending": tuple(n.label for n in pending),
        "failed_nodes": failed,
        "outputs": outputs,
        "node_outputs": node_outputs,
        "pod_name_format": pod_format,
    }
    if m.get("deletionTimestamp") and not finished:
        return _deleted(name, namespace, "Deleted: the Workflow is being deleted", **known)

    if finished:
        reason = _reason(phase, message, _text(spec(workflow).get("shutdown")))
        head = f"{phase} {progress}" if progress else phase
        line = head
        if message and phase != "Succeeded":
            line += f": {_one_line(message, MAX_LINE_CHARS)}"
    elif phase == "Running":
        reason = ""
        line = _running_line(progress, running, pending, suspended)
    elif phase in FINISHED_PHASES:  # a final phase without finishedAt: not decided yet
        reason = ""
        line = f"{phase} {progress}".rstrip()
        line += f": {_one_line(message, MAX_LINE_CHARS)}" if message else ""
    else:
        reason = ""
        line = "Pending: " + (
            _one_line(message, MAX_LINE_CHARS) or "waiting for the Argo controller"
        )

    return WorkflowState(
        name=name,
        namespace=namespace,
        finished=finished,
        succeeded=finished and phase == "Succeeded",
        reason=reason,
        status_line=line,
        **known,
    )


# --- the failure message ------------------------------------------------------------------------


def _node_header(node: WorkflowNode, pod: str) -> str:
    about = []
    if node.display_name and node.display_name != node.label:
        about.append(node.display_name)
    if node.template_name:
        about.append(f"template {node.template_name}")
    text = f"- {node.label}" + (f" ({', '.join(about)})" if about else "")
    text += f": {node.type or 'node'} {node.phase}"
    if node.message:
        text += f": {_one_line(node.message, MAX_LINE_CHARS)}"
    if node.exit_code is not None:
        text += f"; exit code {node.exit_code}"
    if pod:
        text += f"; pod {pod}"
    if node.host_node_name:
        text += f" on {node.host_node_name}"
    return text


def summarize_workflow_failure(
    state: WorkflowState,
    where: str,
    logs: Mapping[str, str],
    *,
    pod_names: Mapping[str, str] | None = None,
    tail_lines: int = 20,
    max_nodes: int = 5,
) -> str:
    """The message of the exception raised for a Workflow that did not succeed.

    ``where`` names the Workflow (``Workflow ns/name``). Then, for each of the first
    ``max_nodes`` :attr:`~WorkflowState.failed_nodes`: its label, display name and template,
    type and phase, message, exit code, pod (and Kubernetes node), and the last
    ``tail_lines`` lines of the pod's log from ``logs`` (pod name → text). ``pod_names`` maps
    node ids to pod names found by the ``workflows.argoproj.io/node-id`` annotation; without an
    entry the name is derived (:func:`pod_name`). Only what the status says is shown. The
    whole is capped at about ``MAX_TOTAL_CHARS`` characters.
    """
    pod_names = pod_names or {}
    if state.reason == "WorkflowDeleted":
        head = f"{where} was deleted before it finished"
        head += "." if not state.exists else f" (phase {state.phase or 'unknown'})."
    else:
        head = f"{where} {state.phase or 'Pending'}"
        head += f": {state.message}" if state.message else ""
    out = [head]
    if state.nodes_note:
        out.append(f"Nodes: {state.nodes_note}.")

    shown = list(state.failed_nodes[: max(0, max_nodes)])
    hidden = list(state.failed_nodes[len(shown) :])
    if shown:
        out.append("Failed nodes:" if len(shown) > 1 else "Failed node:")
    for node in shown:
        pod = ""
        if node.type == "Pod":
            pod = pod_names.get(node.id) or state.pod_name(node)
        out.append(_node_header(node, pod))
        if not pod:
            continue
        if pod not in logs:
            out.append("  (log not available)")
            continue
        tail = _tail(logs.get(pod) or "", tail_lines)
        if tail:
            out.append(f"  last {len(tail)} log lines:")
            out.extend(f"    | {line}" for line in tail)
        else:
            out.append("  (no log output)")
    if hidden:
        names = ", ".join(n.label for n in hidden[:10]) + (", ..." if len(hidden) > 10 else "")
        out.append(f"… and {len(hidden)} more: {names}")
    if not shown:
        with_logs = [pod for pod, text in logs.items() if text and text.strip()]
        if with_logs:
            out.append("Pods:")
        for pod in with_logs[-max(1, max_nodes) :]:
            out.append(f"- pod {pod}")
            tail = _tail(logs[pod], tail_lines)
            out.append(f"  last {len(tail)} log lines:")
            out.extend(f"    | {line}" for line in tail)

    text = "\n".join(out)
    if len(text) > MAX_TOTAL_CHARS:
        text = text[: MAX_TOTAL_CHARS - 40].rstrip() + "\n... (message truncated)"
    return text
