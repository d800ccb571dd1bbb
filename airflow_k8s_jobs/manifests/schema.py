"""Unknown-field detection for built-in kinds, from the official client's generated models.

The API server drops fields its schema does not know (and rejects them with
``fieldValidation=Strict``). The ``kubernetes`` package's models carry that schema
(``openapi_types`` / ``attribute_map``), so we use them rather than a copy: the operators reject a
misspelt field before anything is created, and the simulated cluster drops or rejects it as a real
API server would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from kubernetes.client import models

__all__ = ["UnknownField", "model_for_kind", "prune_unknown", "unknown_fields"]

_LIST = re.compile(r"^list\[(.+)\]$")
_DICT = re.compile(r"^dict\[str, (.+)\]$")
_PRIMITIVES = {"str", "int", "float", "bool", "datetime", "date", "object"}


@dataclass(frozen=True)
class UnknownField:
    """A field the schema does not know: its path (``spec.template.spec.foo``), its own name and
    the names the schema knows at that place (for "did you mean …?")."""

    path: str
    name: str
    known: tuple[str, ...]


@cache
def _fields(type_name: str) -> dict[str, str] | None:
    """JSON field name → type name, for a generated model class name."""
    model = getattr(models, type_name, None)
    if model is None or not hasattr(model, "openapi_types"):
        return None
    return {model.attribute_map[attr]: t for attr, t in model.openapi_types.items()}


def model_for_kind(api_version: str, kind: str) -> str | None:
    """``batch/v1`` + ``Job`` → ``V1Job``, when the client has that model."""
    version = api_version.rsplit("/", 1)[-1]
    if not version or not kind:
        return None
    name = f"{version[0].upper()}{version[1:]}{kind}"
    return name if _fields(name) is not None else None


def unknown_fields(obj: Any, type_name: str, path: str = "") -> list[UnknownField]:
    """Every field of ``obj`` the model ``type_name`` does not know, in document order."""
    found: list[UnknownField] = []
    _walk(obj, type_name, path, found, prune=False)
    return found


def prune_unknown(obj: Any, type_name: str, path: str = "") -> list[str]:
    """Remove unknown fields from ``obj`` in place; return their paths (``spec.foo``)."""
    found: list[UnknownField] = []
    _walk(obj, type_name, path, found, prune=True)
    return [u.path for u in found]


def _walk(value: Any, type_name: str, path: str, found: list[UnknownField], prune: bool) -> None:
    if value is None or type_name in _PRIMITIVES:
        return
    if m := _LIST.match(type_name):
        if isinstance(value, list):
            for i, item in enumerate(value):
                _walk(item, m[1], f"{path}[{i}]", found, prune)
        return
    if m := _DICT.match(type_name):
        if isinstance(value, dict):
            for key, item in value.items():
                _walk(item, m[1], f"{path}[{key}]", found, prune)
        return
    fields = _fields(type_name)
    if fields is None or not isinstance(value, dict):
        return
    for key in list(value):
        child = f"{path}.{key}" if path else str(key)
        if key not in fields:
            found.append(UnknownField(child, str(key), tuple(fields)))
            if prune:
                del value[key]
        else:
            _walk(value[key], fields[key], child, found, prune)
