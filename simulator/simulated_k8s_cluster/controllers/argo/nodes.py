"""``status.nodes``: creating and marking nodes, the children graph, outbound nodes, progress,
and the ``steps.X`` / ``tasks.X`` scope built from finished nodes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from .names import display_name, node_id

Obj = dict[str, Any]

FULFILLED = ("Succeeded", "Failed", "Error", "Skipped", "Omitted")
FAILED = ("Failed", "Error")
_INDEX = re.compile(r"\((\d+):")


def fulfilled(node: Obj | None) -> bool:
    return node is not None and node.get("phase") in FULFILLED


def failed(node: Obj | None) -> bool:
    return node is not None and node.get("phase") in FAILED


class Nodes:
    """The nodes of one Workflow, by id (``status.nodes``) and by name."""

    def __init__(self, workflow_name: str, raw: dict[str, Obj], stamp: Callable[[], str]) -> None:
        self.workflow_name = workflow_name
        self.by_id = raw
        self.stamp = stamp
        self.by_name = {node["name"]: nid for nid, node in raw.items() if "name" in node}

    def get(self, name: str) -> Obj | None:
        nid = self.by_name.get(name)
        return self.by_id.get(nid) if nid is not None else None

    def require(self, name: str) -> Obj:
        node = self.get(name)
        if node is None:
            raise KeyError(name)
        return node

    def values(self) -> Iterable[Obj]:
        return self.by_id.values()

    def init(
        self,
        name: str,
        node_type: str,
        template_name: str,
        template_scope: str,
        boundary_id: str,
        phase: str,
        message: str = "",
        template_ref: Obj | None = None,
        inputs: Obj | None = None,
        flag: Obj | None = None,
    ) -> Obj:
        """``initializeNode``: a new node, started now (fulfilled ones finish now too)."""
        nid = node_id(self.workflow_name, name)
        boundary = self.by_id.get(boundary_id) if boundary_id else None
        node: Obj = {
            "id": nid,
            "name": name,
            "displayName": display_name(name, boundary["name"] if boundary else None),
            "type": node_type,
        }
        if template_name:
            node["templateName"] = template_name
        if template_ref:
            node["templateRef"] = dict(template_ref)
        node["templateScope"] = template_scope
        node["phase"] = phase
        if boundary_id:
            node["boundaryID"] = boundary_id
        if message:
            node["message"] = message
        node["startedAt"] = self.stamp()
        node["finishedAt"] = self.stamp() if phase in FULFILLED else None
        if inputs:
            node["inputs"] = inputs
        if flag:
            node["nodeFlag"] = dict(flag)
        self.by_id[nid] = node
        self.by_name[name] = nid
        return node

    def mark(self, name: str, phase: str, message: str | None = None) -> Obj:
        """``markNodePhase``: the phase, the message when given, ``finishedAt`` once fulfilled."""
        node = self.require(name)
        node["phase"] = phase
        if message is not None:
            if message:
                node["message"] = message
            else:
                node.pop("message", None)
        if phase in FULFILLED and not node.get("finishedAt"):
            node["finishedAt"] = self.stamp()
        return node

    def add_child(self, parent_name: str, child_name: str) -> None:
        parent = self.require(parent_name)
        child_id = node_id(self.workflow_name, child_name)
        children = parent.setdefault("children", [])
        if child_id not in children:
            children.append(child_id)

    def _in_container_set(self, node: Obj) -> bool:
        """A containerSet's pod node or one of its container nodes."""
        if node.get("type") == "Container":
            return True
        return any(
            (self.by_id.get(c) or {}).get("type") == "Container"
            and (self.by_id.get(c) or {}).get("boundaryID") == node["id"]
            for c in node.get("children") or []
        )

    def children(self, node: Obj) -> list[Obj]:
        return [self.by_id[c] for c in node.get("children") or [] if c in self.by_id]

    def outbound(self, nid: str) -> list[str]:
        """``getOutboundNodes``: the leaf nodes later nodes hang from."""
        node = self.by_id.get(nid)
        if node is None:
            return []
        node_type = node.get("type")
        children = node.get("children") or []
        if node_type in ("Pod", "Container") and children and self._in_container_set(node):
            # A containerSet's pod and its containers: the last containers of the graph.
            last: list[str] = []
            for child_id in children:
                child = self.by_id.get(child_id)
                if child is None:
                    continue
                if node_type == "Container" and child.get("boundaryID") != node.get("boundaryID"):
                    last.append(nid)
                else:
                    last.extend(self.outbound(child_id))
            return last
        if node_type in ("Skipped", "Suspend", "Pod", "HTTP", "Plugin", "Container"):
            return [nid]
        if node_type == "Retry" and children:
            return [children[-1]]
        if node_type == "TaskGroup":
            if not children:
                return [nid]
            return [out for child in children for out in self.outbound(child)]
        found: list[str] = []
        for out_id in node.get("outboundNodes") or []:
            out = self.by_id.get(out_id)
            if out is not None and out.get("type") == "Pod":
                found.append(out_id)
            else:
                found.extend(self.outbound(out_id))
        return found


# --- progress ------------------------------------------------------------------------------------


def _parse(progress: str) -> tuple[int, int]:
    done, _, total = progress.partition("/")
    return int(done), int(total)


EXECUTABLE = ("Pod", "HTTP", "Plugin", "Container", "Suspend")
"""Node types whose progress is their own (``progress.executable``); the others sum children."""


def update_progress(nodes: Nodes) -> str:
    """``progress.UpdateProgress``: executable nodes are ``0/1`` until they succeed (``1/1``),
    every other node sums the executable nodes below it, the Workflow sums them all."""
    done = total = 0
    for node in nodes.values():
        if node.get("type") not in EXECUTABLE:
            continue
        complete = node.get("phase") in ("Succeeded", "Skipped", "Omitted")
        node["progress"] = "1/1" if complete else "0/1"
        done, total = done + int(complete), total + 1
    for node in nodes.values():
        if node.get("type") in EXECUTABLE:
            continue
        d, t = _sum(nodes, node, set())
        if t > 0:
            node["progress"] = f"{d}/{t}"
    return f"{done}/{total}"


def _sum(nodes: Nodes, node: Obj, visited: set[str]) -> tuple[int, int]:
    done = total = 0
    for child_id in node.get("children") or []:
        if child_id in visited:
            continue
        visited.add(child_id)
        child = nodes.by_id.get(child_id)
        if child is None:
            continue
        d, t = _sum(nodes, child, visited)
        done, total = done + d, total + t
        if child.get("type") in EXECUTABLE:
            d, t = _parse(child.get("progress") or "0/1")
            done, total = done + d, total + t
    return done, total


# --- scope from finished nodes -------------------------------------------------------------------


def last_attempt(nodes: Nodes, node: Obj) -> Obj:
    """A Retry node stands for its last attempt."""
    if node.get("type") == "Retry":
        attempts = nodes.children(node)
        if attempts:
            return attempts[-1]
    return node


def local_scope(nodes: Nodes, prefix: str, node: Obj, scope: dict[str, str]) -> None:
    """``buildLocalScope``: ``<prefix>.id``, ``.status``, ``.startedAt``, ``.finishedAt``,
    ``.exitCode``, ``.outputs.result`` and ``.outputs.parameters.<name>``."""
    node = last_attempt(nodes, node)
    scope[f"{prefix}.id"] = node["id"]
    if node.get("startedAt"):
        scope[f"{prefix}.startedAt"] = node["startedAt"]
    if node.get("finishedAt"):
        scope[f"{prefix}.finishedAt"] = node["finishedAt"]
    if node.get("phase"):
        scope[f"{prefix}.status"] = node["phase"]
    add_outputs(prefix, node.get("outputs"), scope)


def add_outputs(prefix: str, outputs: Obj | None, scope: dict[str, str]) -> None:
    """``addOutputsToLocalScope``."""
    if not outputs:
        return
    if prefix != "workflow" and outputs.get("result") is not None:
        scope[f"{prefix}.outputs.result"] = str(outputs["result"])
    if prefix != "workflow" and outputs.get("exitCode") is not None:
        scope[f"{prefix}.exitCode"] = str(outputs["exitCode"])
    for param in outputs.get("parameters") or []:
        if param.get("value") is not None:
            scope[f"{prefix}.outputs.parameters.{param['name']}"] = str(param["value"])


def _expansion_index(node: Obj) -> int:
    found = _INDEX.findall(node.get("name", ""))
    return int(found[-1]) if found else 0


def aggregate_scope(prefix: str, children: list[Obj], scope: dict[str, str]) -> None:
    """``processAggregateNodeOutputs``: the outputs of expanded children as JSON lists."""
    params: list[dict[str, str]] = []
    by_name: dict[str, list[str]] = {}
    results: list[Any] = []
    for child in sorted(children, key=_expansion_index):
        outputs = child.get("outputs")
        if not outputs or child.get("phase") != "Succeeded" or child.get("type") == "Retry":
            continue
        if outputs.get("parameters"):
            entry = {}
            for param in outputs["parameters"]:
                value = str(param.get("value", ""))
                entry[param["name"]] = value
                by_name.setdefault(param["name"], []).append(value)
            params.append(entry)
        if outputs.get("result") is not None:
            results.append(outputs["result"])
    scope[f"{prefix}.outputs.result"] = json.dumps(results, separators=(",", ":"))
    scope[f"{prefix}.outputs.parameters"] = json.dumps(params, separators=(",", ":"))
    for name, values in by_name.items():
        scope[f"{prefix}.outputs.parameters.{name}"] = _json_value_list(values)


def _json_value_list(values: list[str]) -> str:
    """``aggregatedJsonValueList``: parsed JSON values when every value parses, else strings."""
    parsed: list[Any] = []
    for value in values:
        try:
            parsed.append(json.loads(value))
        except ValueError:
            return json.dumps(values, separators=(",", ":"))
    return json.dumps(parsed, separators=(",", ":"))
