"""The built-in kinds' schemas, as OpenAPI, and unknown-field pruning the way the API server does.

A real API server knows each kind's fields from the OpenAPI schema it publishes and drops the
fields it does not know (or, with ``fieldValidation=Strict``, rejects the object). The official
``kubernetes`` client is generated from that schema; its model classes keep it as
``openapi_types`` (attribute → type) and ``attribute_map`` (attribute → JSON name). This module
turns them back into OpenAPI schema objects (``properties``, ``items``, ``additionalProperties``,
``$ref``) and walks an object against them.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from kubernetes.client import models

__all__ = ["definition_name", "kind_definition", "prune", "schema_for"]

_ARRAY = re.compile(r"^list\[(?P<of>.+)\]$")
_MAP = re.compile(r"^dict\((?P<key>[^,]+), (?P<of>.+)\)$|^dict\[(?P<key2>[^,]+), (?P<of2>.+)\]$")
_SCALARS: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "int": {"type": "integer", "format": "int64"},
    "float": {"type": "number", "format": "double"},
    "bool": {"type": "boolean"},
    "datetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
    "object": {},
}


def schema_for(type_name: str) -> dict[str, Any]:
    """The OpenAPI schema object for a client type name (``list[V1Container]`` → an array of
    ``$ref: V1Container``)."""
    if type_name in _SCALARS:
        return dict(_SCALARS[type_name])
    if m := _ARRAY.match(type_name):
        return {"type": "array", "items": schema_for(m["of"])}
    if m := _MAP.match(type_name):
        return {"type": "object", "additionalProperties": schema_for(m["of"] or m["of2"])}
    return {"$ref": type_name}


@cache
def definition(type_name: str) -> dict[str, Any] | None:
    """The object schema of a generated model (``V1Job``), or None when the client has none."""
    model = getattr(models, type_name, None)
    types = getattr(model, "openapi_types", None)
    names = getattr(model, "attribute_map", None)
    if not isinstance(types, dict) or not isinstance(names, dict):
        return None
    return {
        "type": "object",
        "properties": {names[attr]: schema_for(t) for attr, t in types.items()},
    }


def definition_name(api_version: str, kind: str) -> str | None:
    """The model of a served kind: ``batch/v1`` + ``Job`` → ``V1Job`` (None if unknown)."""
    version = api_version.rpartition("/")[2]
    if not version or not kind:
        return None
    name = version[:1].upper() + version[1:] + kind
    return name if definition(name) is not None else None


def kind_definition(api_version: str, kind: str) -> dict[str, Any] | None:
    """The object schema of a served kind, if the client knows it."""
    name = definition_name(api_version, kind)
    return definition(name) if name else None


def prune(obj: Any, schema: dict[str, Any], at: str = "") -> list[str]:
    """Drop from ``obj`` (in place) what ``schema`` does not declare; return the dropped fields'
    paths as the API server prints them (``spec.template.spec.foo``)."""
    dropped: list[str] = []
    _prune(obj, schema, at, dropped)
    return dropped


def _prune(value: Any, schema: dict[str, Any], at: str, dropped: list[str]) -> None:
    if "$ref" in schema:
        resolved = definition(schema["$ref"])
        if resolved is None:
            return
        schema = resolved
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _prune(item, schema["items"], f"{at}[{i}]", dropped)
    elif isinstance(value, dict) and "additionalProperties" in schema:
        for key, item in value.items():
            _prune(item, schema["additionalProperties"], f"{at}[{key}]", dropped)
    elif isinstance(value, dict) and "properties" in schema:
        properties = schema["properties"]
        for key in list(value):
            path = f"{at}.{key}" if at else str(key)
            if key in properties:
                _prune(value[key], properties[key], path, dropped)
            else:
                dropped.append(path)
                del value[key]
