"""Unknown-field detection for built-in kinds, from the official client's generated models.

The API server drops fields its schema does not know (and rejects them with
``fieldValidation=Strict``). The ``kubernetes`` package's models carry that schema
(``openapi_types`` / ``attribute_map``), so the simulated cluster uses them rather than a copy.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from kubernetes.client import models

_LIST = re.compile(r"^list\[(.+)\]$")
_DICT = re.compile(r"^dict\[str, (.+)\]$")
_PRIMITIVES = {"str", "int", "float", "bool", "datetime", "date", "object"}


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
    name = f"{version[0].upper()}{version[1:]}{kind}"
    return name if _fields(name) is not None else None


def prune_unknown(obj: Any, type_name: str, path: str = "") -> list[str]:
    """Remove unknown fields from ``obj`` in place; return their paths (``spec.foo``)."""
    unknown: list[str] = []
    _walk(obj, type_name, path, unknown)
    return unknown


def _walk(value: Any, type_name: str, path: str, unknown: list[str]) -> None:
    if value is None or type_name in _PRIMITIVES:
        return
    if m := _LIST.match(type_name):
        if isinstance(value, list):
            for i, item in enumerate(value):
                _walk(item, m[1], f"{path}[{i}]", unknown)
        return
    if m := _DICT.match(type_name):
        if isinstance(value, dict):
            for key, item in value.items():
                _walk(item, m[1], f"{path}[{key}]", unknown)
        return
    fields = _fields(type_name)
    if fields is None or not isinstance(value, dict):
        return
    for key in list(value):
        child = f"{path}.{key}" if path else key
        if key not in fields:
            unknown.append(child)
            del value[key]
        else:
            _walk(value[key], fields[key], child, unknown)
