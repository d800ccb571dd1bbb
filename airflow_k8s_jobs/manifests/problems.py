"""What the Job and the Workflow builders share: collecting every problem before raising, and
the checks of labels, annotations and mappings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import InvalidInputError
from .validation import label_key_problem, label_value_problem, type_name

SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "managedFields",
    "selfLink",
)
"""Metadata the API server writes; a manifest exported with ``kubectl get -o yaml`` has it."""


ANNOTATIONS_MAX_BYTES = 256 * 1024
"""The API server's limit on all of an object's annotations together (keys and values)."""


class Problems:
    """Collects what is wrong with one object; :meth:`raise_if_any` turns it into one
    :class:`InvalidInputError` naming the object, its namespace and the cluster."""

    def __init__(self, kind: str, namespace: str, name: str, cluster: str) -> None:
        self.kind = kind
        self.subject = f"{kind} {namespace}/{name} on cluster {cluster}"
        self.items: list[str] = []

    def add(self, message: str) -> None:
        if message not in self.items:
            self.items.append(message)

    def extend(self, messages: Iterable[str]) -> None:
        for message in messages:
            self.add(message)

    def raise_if_any(self) -> None:
        if not self.items:
            return
        listed = "\n".join(f"  - {item}" for item in self.items)
        noun = "problem" if len(self.items) == 1 else f"{len(self.items)} problems"
        raise InvalidInputError(
            f"{self.subject}: invalid input ({noun}); nothing was created:\n{listed}\n"
            f"Fix the task's arguments or its {self.kind} manifest and run the task again."
        )


def yaml_type(value: Any) -> str:
    """How YAML would name the type of ``value``."""
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return type_name(value)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def merged(
    existing: Any,
    user: Mapping[str, str] | None,
    ours: Mapping[str, str],
    field: str,
    problems: Problems,
) -> dict[str, Any]:
    """Labels or annotations: the manifest's, then the task's, then ours (which always win)."""
    if existing is not None and not isinstance(existing, dict):
        problems.add(f"{field} must be a mapping, not {yaml_type(existing)}")
        existing = None
    return {**(existing or {}), **(user or {}), **ours}


def label_problems(labels: Any, field: str) -> list[str]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [f"{field} must be a mapping"]
    problems: list[str] = []
    for label, value in labels.items():
        if problem := label_key_problem(label):
            problems.append(f"{field}: key {label!r}: {problem}")
        if problem := label_value_problem(value):
            problems.append(f"{field}[{label}] value {value!r}: {problem}")
    return problems


def annotation_problems(annotations: Any, field: str) -> list[str]:
    if annotations is None:
        return []
    if not isinstance(annotations, dict):
        return [f"{field} must be a mapping"]
    problems: list[str] = []
    size = sum(len(str(k).encode()) + len(str(v).encode()) for k, v in annotations.items())
    if size > ANNOTATIONS_MAX_BYTES:
        problems.append(
            f"{field} total {size} bytes, over the API server's limit of 256 KiB "
            f"({ANNOTATIONS_MAX_BYTES} bytes, keys and values together); keep large data out "
            "of annotations (in a ConfigMap, or the storage the task reads)"
        )
    for annotation, value in annotations.items():
        if problem := label_key_problem(annotation):
            problems.append(f"{field}: key {annotation!r}: {problem}")
        if not isinstance(value, str):
            problems.append(
                f"{field}[{annotation}] value {value!r}: annotation values must be strings "
                f"(quote it: {str(value)!r})"
            )
    return problems
