"""Resource templates: what ``argoexec resource`` does with ``kubectl`` in Argo, done here on the
simulated cluster's store when the template's pod has run (``workflow/executor/resource.go``).

Modelled: ``action`` ``get`` / ``create`` / ``apply`` / ``replace`` / ``patch`` (``mergeStrategy``
``strategic`` — the default —, ``merge``, ``json``; the object named by the manifest or by the
``flags`` ``KIND NAME``) / ``delete``; ``setOwnerReference`` (the Workflow owns what is
created); ``successCondition`` / ``failureCondition`` (``PATH OP VALUE`` requirements joined by
``,``, checked again each pass until one holds); output parameters ``valueFrom.jsonPath``
(``{.a.b}``) of the object. Not modelled: ``kubectl`` flags other than ``KIND NAME``, ``jqFilter``
outputs and the ``manifestFrom`` artifact.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import yaml

from ...admission import admit_create, admit_update, generate_name
from ...patching import JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, apply_patch
from ...resources import ARGO_WORKFLOWS, ApiError, ResourceType

Obj = dict[str, Any]

_STRATEGIES = {"strategic": STRATEGIC_MERGE_PATCH, "merge": MERGE_PATCH, "json": JSON_PATCH}


class Pending(Exception):
    """Neither the success nor the failure condition holds yet."""


def _find_type(registry: Any, word: str) -> ResourceType | None:
    word = word.lower().split(".")[0]
    for resource in registry.types.values():
        if word in (
            resource.plural,
            resource.singular,
            resource.kind.lower(),
            *resource.short_names,
        ):
            return resource
    return None


def _lookup(path: str, obj: Any) -> Any:
    """A dotted path (``status.succeeded``, ``{.metadata.name}``) into an object."""
    path = path.strip().strip("{}").lstrip(".")
    current = obj
    for part in re.findall(r"[^.\[\]]+", path):
        if isinstance(current, list):
            try:
                current = current[int(part)]
            except (ValueError, IndexError):
                return None
        elif isinstance(current, dict):
            current = current.get(part)
        else:
            return None
    return current


def _holds(condition: str, obj: Obj) -> bool:
    """A label-selector-like condition (``status.phase in (Failed,Error)``, ``a.b > 0``)."""
    for requirement in re.split(r",(?![^(]*\))", condition):
        requirement = requirement.strip()
        if not requirement:
            continue
        found = re.match(
            r"^(!?)([\w.\[\]/-]+)\s*(==|!=|=|>|<|in\s+|notin\s+)?\s*(.*)$", requirement
        )
        if found is None:
            return False
        negate, path, op, value = found.groups()
        actual = _lookup(path, obj)
        op = (op or "").strip()
        text = "" if actual is None else str(actual)
        if isinstance(actual, bool):
            text = str(actual).lower()
        if not op:
            ok = actual is not None
            if negate:
                ok = not ok
        elif op in ("=", "=="):
            ok = actual is not None and text == value.strip()
        elif op == "!=":
            ok = text != value.strip()
        elif op in ("in", "notin"):
            choices = [v.strip() for v in value.strip().strip("()").split(",")]
            ok = (actual is not None and text in choices) == (op == "in")
        else:
            try:
                number, bound = float(text), float(value)
            except ValueError:
                return False
            ok = number > bound if op == ">" else number < bound
        if not ok:
            return False
    return True


def perform(store: Any, registry: Any, workflow: Obj, resource: Obj) -> tuple[Obj | None, str]:
    """Do a resource template's action; (the object, an error message or "").

    Raises :class:`Pending` while a ``successCondition`` / ``failureCondition`` is waited for.
    """
    action = str(resource.get("action") or "")
    namespace = workflow["metadata"]["namespace"]
    manifest_text = str(resource.get("manifest") or "")
    try:
        manifest = yaml.safe_load(manifest_text) if manifest_text else None
    except yaml.YAMLError as exc:
        return None, f"failed to parse the manifest: {exc}"
    flags = [str(f) for f in resource.get("flags") or [] if not str(f).startswith("-")]
    target: ResourceType | None = None
    name = ""
    if isinstance(manifest, dict) and manifest.get("kind"):
        target = registry.by_kind(str(manifest.get("apiVersion", "")), str(manifest["kind"]))
        if target is None:
            kind, version = manifest["kind"], manifest.get("apiVersion")
            return None, f'no matches for kind "{kind}" in version "{version}"'
        meta = manifest.setdefault("metadata", {})
        name = str(meta.get("name") or "")
        if target.namespaced:
            namespace = str(meta.get("namespace") or namespace)
            meta["namespace"] = namespace
    if flags:
        target = _find_type(registry, flags[0]) or target
        if target is None:
            return None, f'the server doesn\'t have a resource type "{flags[0]}"'
        if len(flags) > 1:
            name = flags[1]
    if target is None:
        return None, "the resource template names no kind of object"
    ns = namespace if target.namespaced else ""
    try:
        if action == "create" or (action == "apply" and store.peek(target, ns, name) is None):
            if not isinstance(manifest, dict):
                return None, "the manifest is not an object"
            meta = manifest["metadata"]
            if not meta.get("name"):
                if not meta.get("generateName"):
                    return None, "resource name may not be empty"
                meta["name"] = generate_name(str(meta["generateName"]))
            if resource.get("setOwnerReference"):
                wmeta = workflow["metadata"]
                meta.setdefault("ownerReferences", []).append(
                    {
                        "apiVersion": ARGO_WORKFLOWS.api_version,
                        "kind": ARGO_WORKFLOWS.kind,
                        "name": wmeta["name"],
                        "uid": wmeta["uid"],
                        "blockOwnerDeletion": True,
                    }
                )
            obj = store.create(target, admit_create(target, manifest))
        elif action in ("apply", "replace"):
            current = store.require(target, ns, name)
            assert isinstance(manifest, dict)
            new = copy.deepcopy(current)
            for key, value in manifest.items():
                if key != "metadata":
                    new[key] = value
            new["metadata"] = {**current["metadata"], **manifest["metadata"]}
            obj = store.update(target, admit_update(target, current, new))
        elif action == "patch":
            current = store.require(target, ns, name)
            strategy = str(resource.get("mergeStrategy") or "strategic")
            content_type = _STRATEGIES.get(strategy, STRATEGIC_MERGE_PATCH)
            if target.custom and content_type == STRATEGIC_MERGE_PATCH:
                content_type = MERGE_PATCH
            body = manifest
            if isinstance(body, dict):
                body = {k: v for k, v in body.items() if k not in ("apiVersion", "kind")}
            new = apply_patch(copy.deepcopy(current), body, content_type, target.custom)
            obj = store.update(target, admit_update(target, current, new))
        elif action == "delete":
            store.delete(target, ns, name, "Background")
            return None, ""
        elif action == "get":
            obj = store.require(target, ns, name)
        else:
            return None, f"Unsupported action: {action}"
    except ApiError as exc:
        if action == "delete" and exc.code == 404:
            return None, ""
        return None, exc.message
    return obj, ""


def check(store: Any, obj: Obj, resource: Obj, target: ResourceType | None = None) -> str:
    """After the action: "" when done, an error message when the failure condition holds;
    raises :class:`Pending` while neither condition holds."""
    success = str(resource.get("successCondition") or "")
    failure = str(resource.get("failureCondition") or "")
    if not success and not failure:
        return ""
    if failure and _holds(failure, obj):
        return f"failure condition '{failure}' evaluated true"
    if success and _holds(success, obj):
        return ""
    if not success:
        return ""
    raise Pending()


def outputs(template: Obj, obj: Obj | None) -> list[Obj]:
    """Output parameters read from the object (``valueFrom.jsonPath``)."""
    out: list[Obj] = []
    for declared in (template.get("outputs") or {}).get("parameters") or []:
        value_from = declared.get("valueFrom") or {}
        if value_from.get("jsonPath") is None or obj is None:
            continue
        value = _lookup(str(value_from["jsonPath"]), obj)
        text = value if isinstance(value, str) else json.dumps(value)
        out.append({**copy.deepcopy(declared), "value": "" if value is None else text})
    return out
