"""The OpenAPI documents the simulated API server publishes: ``/openapi/v2`` and ``/openapi/v3``.

kubectl reads them for ``kubectl explain`` (v3, falling back to v2), for server-side field
validation (the ``fieldValidation`` parameter of a group-version's PATCH operations) and for
client-side strategic merge patches (the ``x-kubernetes-patch-*`` extensions).

The built-in kinds' schemas come from the official ``kubernetes`` client's models (see
:mod:`.schema`): each model becomes a definition named as upstream names it
(``V1JobSpec`` → ``io.k8s.api.batch.v1.JobSpec``), with the fields' descriptions taken from the
models' docstrings, ``required`` from the fields the models refuse to leave unset, the
``x-kubernetes-group-version-kind`` of the served kinds, and the list extensions
(``x-kubernetes-list-type``/``-map-keys``, ``x-kubernetes-patch-strategy``/``-merge-key``) for
the lists strategic merge patch merges by key. Simplified: the kinds' own descriptions (the
client does not keep them), ``Quantity``/``IntOrString``/``Time`` inlined as the client types
them, and custom resources (Argo, Kueue) published with the schema of a CRD that preserves
unknown fields under ``spec`` and ``status``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any

from kubernetes.client import models

from . import schema
from .resources import ResourceType

__all__ = [
    "definition_name",
    "list_extensions",
    "model_for",
    "v2_document",
    "v3_document",
    "v3_index",
]

Obj = dict[str, Any]
# The documents are built once per set of served resources and shared: callers must not
# change them.

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
CORE = "io.k8s.api.core.v1"
# Roots whose reachable models live in meta/v1 and core/v1 (everything else a served kind
# reaches lives in that kind's own API package).
_META_ROOTS = ("V1ObjectMeta", "V1ListMeta", "V1LabelSelector", "V1Status", "V1DeleteOptions")
_CORE_ROOTS = (
    "V1Pod",
    "V1PodTemplate",
    "V1Node",
    "V1Namespace",
    "CoreV1Event",
    "V1ConfigMap",
    "V1Secret",
    "V1ServiceAccount",
    "V1Service",
    "V1PersistentVolume",
    "V1PersistentVolumeClaim",
)
# Model names the client prefixes because two API groups define the same kind.
_CLIENT_NAMES = {("", "v1", "Event"): "CoreV1Event"}
_PREFIX = re.compile(r"^(?:[A-Z][a-z]+)*V\d+(?:(?:alpha|beta)\d+)?(?=[A-Z])")


def _lists(
    strategy: str | None, merge_key: str | None, list_type: str, map_keys: tuple[str, ...] = ()
) -> Obj:
    ext: Obj = {"x-kubernetes-list-type": list_type}
    if map_keys:
        ext["x-kubernetes-list-map-keys"] = list(map_keys)
    if merge_key:
        ext["x-kubernetes-patch-merge-key"] = merge_key
    if strategy:
        ext["x-kubernetes-patch-strategy"] = strategy
    return ext


def _keyed(key: str, *more: str, strategy: str = "merge") -> Obj:
    return _lists(strategy, key, "map", (key, *more))


# The list extensions of the lists the served kinds have, by field name (and owning model
# where the same name means different lists), as k8s.io/api tags them.
_LIST_EXTENSIONS: dict[str, Obj] = {
    "containers": _keyed("name"),
    "initContainers": _keyed("name"),
    "ephemeralContainers": _keyed("name"),
    "env": _keyed("name"),
    "volumes": _keyed("name", strategy="merge,retainKeys"),
    "volumeMounts": _keyed("mountPath"),
    "volumeDevices": _keyed("devicePath"),
    "ports": _keyed("containerPort", "protocol"),
    "imagePullSecrets": _keyed("name"),
    "conditions": _keyed("type"),
    "ownerReferences": _keyed("uid"),
    "hostAliases": _keyed("ip"),
    "topologySpreadConstraints": _keyed("topologyKey", "whenUnsatisfiable"),
    "resourceClaims": _keyed("name"),
    "finalizers": _lists("merge", None, "set"),
}
_INT_OR_STRING_FIELDS = {"port", "targetPort", "maxSurge", "maxUnavailable"}
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
# Maps of resource quantities (the client types a Quantity as a string).
_QUANTITY_MAPS = {"limits", "requests", "overhead", "capacity", "allocatable", "hard", "used"}
_FREE_FORM: Obj = {"type": "object"}
_LIST_OVERRIDES: dict[tuple[str, str], Obj] = {
    ("V1JobStatus", "conditions"): _lists("merge", "type", "atomic"),
    ("V1ServiceAccount", "imagePullSecrets"): _lists(None, None, "atomic"),
    ("V1NamespaceSpec", "finalizers"): _lists(None, None, "atomic"),
    ("V1EphemeralContainer", "ports"): _keyed("containerPort", "protocol"),
}


def list_extensions(field: str) -> Obj | None:
    """The ``x-kubernetes-list-*`` / ``x-kubernetes-patch-*`` extensions of a built-in list
    field, by its name (None: an atomic list)."""
    return _LIST_EXTENSIONS.get(field)


def _go_name(model: str) -> str:
    return _PREFIX.sub("", model, count=1)


def model_for(resource: ResourceType) -> str | None:
    """The client model of a served built-in kind (``Job`` → ``V1Job``), or None."""
    if resource.custom:
        return None
    name = _CLIENT_NAMES.get((resource.group, resource.version, resource.kind))
    if name is None:
        name = schema.definition_name(resource.api_version, resource.kind)
    return name if name and schema.definition(name) is not None else None


def _referenced(model: str) -> Iterator[str]:
    found = schema.definition(model)
    for prop in (found or {}).get("properties", {}).values():
        while "items" in prop or "additionalProperties" in prop:
            prop = prop.get("items") or prop["additionalProperties"]
        if "$ref" in prop and schema.definition(prop["$ref"]) is not None:
            yield prop["$ref"]


@cache
def _reachable(roots: tuple[str, ...]) -> frozenset[str]:
    seen: set[str] = set()
    todo = [r for r in roots if schema.definition(r) is not None]
    while todo:
        model = todo.pop()
        if model not in seen:
            seen.add(model)
            todo.extend(_referenced(model))
    return frozenset(seen)


def _package(resource: ResourceType) -> str:
    """The API package of a built-in kind: ``batch`` → ``io.k8s.api.batch.v1``."""
    if not resource.group:
        return CORE
    return f"io.k8s.api.{resource.group.split('.')[0]}.{resource.version}"


def _crd_package(resource: ResourceType) -> str:
    """How the API server names a CRD's definitions: ``argoproj.io`` → ``io.argoproj.v1alpha1``."""
    return ".".join([*reversed(resource.group.split(".")), resource.version])


def definition_name(model: str, home: str) -> str:
    """The upstream definition name of a client model reached from a kind of package ``home``."""
    if model in _reachable(_META_ROOTS):
        package = META
    elif model in _reachable(_CORE_ROOTS):
        package = CORE
    else:
        package = home
    return f"{package}.{_go_name(model)}"


@cache
def _description(model: str, attribute: str) -> str:
    prop = getattr(getattr(models, model, None), attribute, None)
    doc = inspect.getdoc(prop.fget) if isinstance(prop, property) and prop.fget else None
    if not doc:
        return ""
    kept = []
    for para in doc.split("\n\n")[1:]:
        text = para.replace("# noqa: E501", "").strip()
        if text.startswith((":return:", ":rtype:")):
            break
        kept.append(text)
    return "\n\n".join(p for p in kept if p)


@cache
def _required(model: str, attribute: str) -> bool:
    prop = getattr(getattr(models, model, None), attribute, None)
    if not isinstance(prop, property) or prop.fset is None:
        return False
    try:
        source = inspect.getsource(prop.fset)
    except (OSError, TypeError):
        return False
    return "must not be `None`" in source


class _Builder:
    """Definitions for one document, ``$ref`` written as ``prefix + name``."""

    def __init__(self, prefix: str, v3: bool) -> None:
        self.prefix = prefix
        self.v3 = v3
        self.definitions: dict[str, Obj] = {}

    def add_model(self, model: str, home: str, gvks: Iterable[Obj] = ()) -> str:
        name = definition_name(model, home)
        found = self.definitions.get(name)
        if found is not None:
            if gvks:
                found.setdefault("x-kubernetes-group-version-kind", []).extend(gvks)
            return name
        result: Obj = {"type": "object"}
        self.definitions[name] = result
        source = schema.definition(model) or {"properties": {}}
        attributes = getattr(models, model).attribute_map
        properties: Obj = {}
        required: list[str] = []
        for attribute, json_name in attributes.items():
            prop = self._property(source["properties"][json_name], home)
            if not prop:  # the client types IntOrString and free-form objects as ``object``
                prop = self._int_or_string() if json_name in _INT_OR_STRING_FIELDS else {}
                prop = prop or dict(_FREE_FORM)
            description = _description(model, attribute)
            if description:
                prop = {"description": description, **prop}
            if json_name in _QUANTITY_MAPS and prop.get("additionalProperties") == {
                "type": "string"
            }:
                prop["additionalProperties"] = self._quantity()
            if prop.get("type") == "array":
                ext = _LIST_OVERRIDES.get((model, json_name), _LIST_EXTENSIONS.get(json_name))
                if ext:
                    prop.update(ext)
            properties[json_name] = prop
            if _required(model, attribute):
                required.append(json_name)
        result["properties"] = properties
        if required:
            result["required"] = required
        if gvks:
            result["x-kubernetes-group-version-kind"] = list(gvks)
        return name

    def _quantity(self) -> Obj:
        self.definitions[QUANTITY] = {"oneOf": [{"type": "string"}, {"type": "number"}]}
        return {"$ref": self.prefix + QUANTITY}

    def _int_or_string(self) -> Obj:
        self.definitions[INT_OR_STRING] = {
            "format": "int-or-string",
            "oneOf": [{"type": "integer"}, {"type": "string"}],
        }
        ref = {"$ref": self.prefix + INT_OR_STRING}
        return {"allOf": [ref]} if self.v3 else ref

    def _property(self, prop: Obj, home: str) -> Obj:
        if "$ref" in prop:
            ref = {"$ref": self.prefix + self.add_model(prop["$ref"], home)}
            return {"allOf": [ref]} if self.v3 else ref
        if prop.get("type") == "object" and "additionalProperties" in prop:
            return {**prop, "additionalProperties": self._inner(prop["additionalProperties"], home)}
        if prop.get("type") == "array":
            return {**prop, "items": self._inner(prop["items"], home)}
        return dict(prop)

    def _inner(self, prop: Obj, home: str) -> Obj:
        if "$ref" in prop:
            return {"$ref": self.prefix + self.add_model(prop["$ref"], home)}
        return self._property(prop, home)

    def add_resource(self, resource: ResourceType) -> None:
        gvk = {"group": resource.group, "version": resource.version, "kind": resource.kind}
        model = model_for(resource)
        if model is not None:
            self.add_model(model, _package(resource), [gvk])
            if schema.definition(model + "List") is not None:
                list_gvk = {**gvk, "kind": resource.kind + "List"}
                self.add_model(model + "List", _package(resource), [list_gvk])
        elif resource.custom:
            self._add_custom(resource, gvk)

    def _add_custom(self, resource: ResourceType, gvk: Obj) -> None:
        meta = self.prefix + self.add_model("V1ObjectMeta", META)
        preserved: Obj = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        self.definitions[f"{_crd_package(resource)}.{resource.kind}"] = {
            "type": "object",
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"allOf": [{"$ref": meta}]} if self.v3 else {"$ref": meta},
                "spec": dict(preserved),
                "status": dict(preserved),
            },
            "x-kubernetes-group-version-kind": [gvk],
        }


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _patch_paths(resources: Iterable[ResourceType], v3: bool) -> Obj:
    """Each kind's PATCH operation with its group-version-kind and query parameters: what
    kubectl checks before it asks for server-side field validation."""
    paths: Obj = {}
    for resource in resources:
        prefix = "/" + _gv_path(resource.group, resource.version)
        scope = "/namespaces/{namespace}" if resource.namespaced else ""
        parameters = [
            {"name": name, "in": "query", **({"schema": {"type": "string"}} if v3 else {})}
            | ({} if v3 else {"type": "string"})
            for name in ("dryRun", "fieldManager", "fieldValidation", "force")
        ]
        paths[f"{prefix}{scope}/{resource.plural}/{{name}}"] = {
            "patch": {
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {
                    "group": resource.group,
                    "version": resource.version,
                    "kind": resource.kind,
                },
                "parameters": parameters,
                "responses": {},
            }
        }
    return paths


def v3_index(documents: dict[tuple[str, str], Obj]) -> Obj:
    """``/openapi/v3``: where each group version's document is, its URL carrying a hash of
    the document (as the real server's does, so clients may cache it)."""
    paths = {
        _gv_path(g, v): {"serverRelativeURL": f"/openapi/v3/{_gv_path(g, v)}?hash={_hash(d)}"}
        for (g, v), d in documents.items()
    }
    return {"paths": dict(sorted(paths.items()))}


def _hash(document: Obj) -> str:
    return hashlib.sha512(json.dumps(document, sort_keys=True).encode()).hexdigest().upper()


def v3_document(resources: list[ResourceType], version: str) -> Obj:
    """The OpenAPI 3.0 document of one group version serving ``resources``."""
    return _v3_document(tuple(resources), version)


@cache
def _v3_document(resources: tuple[ResourceType, ...], version: str) -> Obj:
    builder = _Builder("#/components/schemas/", v3=True)
    for resource in resources:
        builder.add_resource(resource)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": version},
        "paths": _patch_paths(resources, v3=True),
        "components": {"schemas": dict(sorted(builder.definitions.items()))},
    }


def v2_document(resources: list[ResourceType], version: str) -> Obj:
    """The Swagger 2.0 document of every resource served."""
    return _v2_document(tuple(resources), version)


@cache
def _v2_document(resources: tuple[ResourceType, ...], version: str) -> Obj:
    builder = _Builder("#/definitions/", v3=False)
    for resource in resources:
        builder.add_resource(resource)
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": version},
        "paths": _patch_paths(resources, v3=False),
        "definitions": dict(sorted(builder.definitions.items())),
    }
