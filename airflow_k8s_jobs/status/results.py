"""What a finished Job gives back: its pods in completion-index order and their termination
messages (the operator's XCom), without I/O."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._objects import Obj, completion_index, meta, status


def index_of(pod: Obj) -> int:
    """The pod's completion index (Indexed Jobs), -1 for other Jobs."""
    index = completion_index(pod)
    return -1 if index is None else index


def by_index(pods: Sequence[Obj]) -> list[Obj]:
    """``pods`` ordered by completion index (stable: the given order within an index)."""
    return sorted(pods, key=index_of)


def pod_label(pod: Obj) -> str:
    """How the task log names a pod: ``name`` or ``name[index]``."""
    index = index_of(pod)
    return str(meta(pod)["name"]) + (f"[{index}]" if index >= 0 else "")


def termination_messages(pods: Sequence[Obj]) -> list[Any]:
    """Termination messages of the succeeded pods: by completion index for Indexed Jobs (``""``
    for an index without one), else in the given order. A pod's message is its last
    container's that wrote one."""
    by_index_: dict[int, str] = {}
    plain: list[str] = []
    for pod in pods:
        if status(pod).get("phase") != "Succeeded":
            continue
        text = ""
        for cs in status(pod).get("containerStatuses") or []:
            terminated = (cs.get("state") or {}).get("terminated") or {}
            if terminated.get("message"):
                text = terminated["message"]
        index = index_of(pod)
        if index >= 0:
            by_index_[index] = text
        else:
            plain.append(text)
    if by_index_:
        return [by_index_.get(i, "") for i in range(max(by_index_) + 1)]
    return list(plain)
