"""Label and field selectors, parsed from their query-string form and matched against objects."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .resources import ApiError, ResourceType

_REQUIREMENT = re.compile(
    r"""^\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9][-A-Za-z0-9_./]*)\s*
        (?:(?P<op>==|!=|=|\s+in\s+|\s+notin\s+)\s*(?P<value>\([^)]*\)|[^,\s]*))?\s*$""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    """In | NotIn | Exists | DoesNotExist (``=`` is In with one value)."""
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        if self.operator == "In":
            return self.key in labels and labels[self.key] in self.values
        if self.operator == "NotIn":
            return self.key not in labels or labels[self.key] not in self.values
        raise ValueError(self.operator)


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return parts


def parse_label_selector(text: str | None) -> list[Requirement]:
    """Parse ``a=b,c!=d,e in (x,y),f notin (z),g,!h``; 400 ``BadRequest`` when malformed."""
    if not text:
        return []
    requirements = []
    for part in _split_top_level(text):
        match = _REQUIREMENT.match(part)
        if not match:
            raise ApiError(400, f"unable to parse requirement: {part.strip()!r}")
        key, op, value = match["key"], (match["op"] or "").strip(), match["value"]
        if match["neg"]:
            if op:
                raise ApiError(400, f"unable to parse requirement: {part.strip()!r}")
            requirements.append(Requirement(key, "DoesNotExist"))
        elif not op:
            requirements.append(Requirement(key, "Exists"))
        elif op in ("=", "=="):
            requirements.append(Requirement(key, "In", (value,)))
        elif op == "!=":
            requirements.append(Requirement(key, "NotIn", (value,)))
        else:
            if not (value.startswith("(") and value.endswith(")")):
                raise ApiError(400, f"unable to parse requirement: {part.strip()!r}")
            values = tuple(v.strip() for v in value[1:-1].split(",") if v.strip())
            if not values:
                raise ApiError(
                    400,
                    f"unable to parse requirement: {part.strip()!r}: for "
                    "'in', 'notin' operators, values set can't be empty",
                )
            requirements.append(Requirement(key, "In" if op == "in" else "NotIn", values))
    return requirements


def selector_from_dict(selector: Mapping[str, Any] | None) -> list[Requirement]:
    """A ``metav1.LabelSelector`` (matchLabels + matchExpressions) as requirements."""
    if not selector:
        return []
    requirements = [
        Requirement(k, "In", (v,)) for k, v in (selector.get("matchLabels") or {}).items()
    ]
    for expr in selector.get("matchExpressions") or []:
        requirements.append(
            Requirement(expr["key"], expr["operator"], tuple(expr.get("values") or ()))
        )
    return requirements


def labels_match(requirements: list[Requirement], labels: Mapping[str, str] | None) -> bool:
    labels = labels or {}
    return all(r.matches(labels) for r in requirements)


# --- field selectors ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldRequirement:
    path: str
    equal: bool
    value: str

    def matches(self, obj: Mapping[str, Any]) -> bool:
        actual = field_value(obj, self.path)
        return (actual == self.value) == self.equal


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The string a field selector compares a dotted path against (missing → "").

    An Event's ``source`` is ``source.component``, or its ``reportingComponent`` (the reporting
    controller) when that is empty, as kube-apiserver selects it. A Job's ``status.successful``
    is its ``status.succeeded`` count (``"0"`` when missing).
    """
    if path == "status.successful":
        status = obj.get("status")
        succeeded = status.get("succeeded") if isinstance(status, Mapping) else None
        return str(int(succeeded or 0))
    if path == "source":
        source = obj.get("source")
        component = source.get("component") if isinstance(source, Mapping) else None
        return str(component or obj.get("reportingComponent") or "")
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return ""
        current = current.get(part)
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)


def parse_field_selector(text: str | None, resource: ResourceType) -> list[FieldRequirement]:
    """Parse ``a=b,c!=d``; only the labels the resource supports, like the API server."""
    if not text:
        return []
    allowed = {"metadata.name", "metadata.namespace", *resource.field_labels}
    requirements = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        op = next((op for op in ("!=", "==", "=") if op in part), None)
        if op is None:
            raise ApiError(400, f"invalid selector: '{text}'; can't understand '{part}'")
        path, value = part.split(op, 1)
        path = path.strip()
        if path not in allowed:
            raise ApiError(400, f"field label not supported: {path}")
        requirements.append(FieldRequirement(path, op != "!=", value.strip()))
    return requirements


def fields_match(requirements: list[FieldRequirement], obj: Mapping[str, Any]) -> bool:
    return all(r.matches(obj) for r in requirements)


def object_filter(
    labels: list[Requirement], fields: list[FieldRequirement]
) -> Callable[[Mapping[str, Any]], bool]:
    """One predicate for both selectors."""

    def matches(obj: Mapping[str, Any]) -> bool:
        return labels_match(labels, obj.get("metadata", {}).get("labels")) and fields_match(
            fields, obj
        )

    return matches
