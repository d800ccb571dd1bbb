"""Server-side apply: ``PATCH`` with ``Content-Type: application/apply-patch+yaml``.

The applied configuration says what its field manager wants; the API server merges it into the
live object by the schema (lists of objects keyed by their ``x-kubernetes-list-map-keys``, sets
by value, other lists whole), remembers in ``metadata.managedFields`` which fields each manager
applied (``FieldsV1``), removes the fields a manager applied before and no longer does (unless
another manager owns them too), and refuses with ``409 Conflict`` to change a field another
manager owns unless ``force=true``, which takes the field over. Creates the object when absent.

Simplified from structured-merge-diff: only applies are tracked (``create``, ``update`` and the
other patches neither record nor drop ownership, so a client-side ``kubectl apply`` owns
nothing here), a field is shared without conflict when both managers set the same value, the
list types come from the field names of the built-in kinds (custom resources: every list
atomic), and a list item whose key fields are omitted is keyed by those it has.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml

from . import openapi
from .resources import ApiError, ResourceType

__all__ = ["Conflict", "FieldPath", "applied_fields", "decode_fields", "encode_fields", "merge"]

Obj = dict[str, Any]
# One step of a field path: ("f", name), ("k", ((key, value), ...)) for an item of a keyed
# list, ("v", json) for an item of a set.
Step = tuple[str, Any]
FieldPath = tuple[Step, ...]
_MISSING = object()
_SERVER_META = {
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
}


class Conflict(ApiError):
    """``409``: fields another manager owns would change."""

    def __init__(self, conflicts: list[tuple[str, FieldPath]]) -> None:
        if len(conflicts) == 1:
            manager, path = conflicts[0]
            message = (
                f'Apply failed with 1 conflict: conflict with "{manager}": {format_path(path)}'
            )
        else:
            lines: list[str] = []
            for manager in dict.fromkeys(m for m, _ in conflicts):
                lines.append(f'conflicts with "{manager}":')
                lines.extend(f"- {format_path(p)}" for m, p in conflicts if m == manager)
            message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
        causes = [
            {
                "reason": "FieldManagerConflict",
                "message": f'conflict with "{m}"',
                "field": format_path(p),
            }
            for m, p in conflicts
        ]
        super().__init__(409, message, details={"causes": causes})


def parse(text: str) -> Obj:
    """The applied configuration (YAML or JSON)."""
    try:
        body = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ApiError(400, f"error decoding YAML: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "the object provided is unrecognized")
    for required in ("apiVersion", "kind"):
        if not body.get(required):
            raise ApiError(400, f"{required} must be set")
    return body


def _list_type(field: str | None, custom: bool) -> tuple[str, tuple[str, ...]]:
    ext = None if custom or field is None else openapi.list_extensions(field)
    if not ext:
        return "atomic", ()
    return ext["x-kubernetes-list-type"], tuple(ext.get("x-kubernetes-list-map-keys", ()))


def _item_key(item: Obj, keys: tuple[str, ...]) -> tuple[tuple[str, Any], ...]:
    return tuple((k, item[k]) for k in keys if k in item)


def applied_fields(obj: Obj, custom: bool, status: bool) -> set[FieldPath]:
    """The fields an applied configuration sets (server-set metadata left out, and ``status``
    unless ``status`` (the status subresource) — or only ``status`` when it is)."""
    found: set[FieldPath] = set()
    for key, value in obj.items():
        if key in ("apiVersion", "kind") or (key == "status") != status:
            continue
        if key == "metadata" and isinstance(value, dict):
            for meta_key, meta_value in value.items():
                if meta_key not in _SERVER_META:
                    _collect(meta_value, (("f", key), ("f", meta_key)), meta_key, custom, found)
            continue
        _collect(value, (("f", key),), key, custom, found)
    return found


def _collect(value: Any, at: FieldPath, field: str, custom: bool, found: set[FieldPath]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _collect(item, (*at, ("f", key)), key, custom, found)
        return
    kind, keys = _list_type(field, custom)
    if (
        isinstance(value, list)
        and value
        and kind == "map"
        and all(isinstance(i, dict) for i in value)
    ):
        for item in value:
            step: FieldPath = (*at, ("k", _item_key(item, keys)))
            found.add(step)
            for key, inner in item.items():
                _collect(inner, (*step, ("f", key)), key, custom, found)
        return
    if isinstance(value, list) and value and kind == "set":
        found.update((*at, ("v", json.dumps(v, sort_keys=True))) for v in value)
        return
    found.add(at)


def format_path(path: FieldPath) -> str:
    """As structured-merge-diff prints a path: ``.spec.containers[name="main"].image``."""
    out = []
    for kind, value in path:
        if kind == "f":
            out.append(f".{value}")
        elif kind == "k":
            out.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in value) + "]")
        else:
            out.append(f"[={value}]")
    return "".join(out)


def encode_fields(paths: set[FieldPath]) -> Obj:
    """``FieldsV1``: ``{"f:spec": {"f:containers": {"k:{\\"name\\":\\"c\\"}": {".": {}}}}}``."""
    root: Obj = {}
    for path in paths:
        node = root
        for step in path:
            node = node.setdefault(_encode_step(step), {})
        if path and path[-1][0] == "k":
            node["."] = {}
    return root


def _encode_step(step: Step) -> str:
    kind, value = step
    if kind == "f":
        return f"f:{value}"
    if kind == "k":
        return "k:" + json.dumps(dict(value), separators=(",", ":"))
    return f"v:{value}"


def decode_fields(fields: Obj, at: FieldPath = ()) -> set[FieldPath]:
    """The paths of a ``FieldsV1`` object (the inverse of :func:`encode_fields`)."""
    found: set[FieldPath] = set()
    if not fields and at:
        found.add(at)
    for key, inner in fields.items():
        if key == ".":
            found.add(at)
            continue
        prefix, _, rest = key.partition(":")
        step: Step
        if prefix == "k":
            step = ("k", tuple(json.loads(rest).items()))
        elif prefix == "v":
            step = ("v", rest)
        else:
            step = ("f", rest)
        found |= decode_fields(inner if isinstance(inner, dict) else {}, (*at, step))
    return found


def _get(obj: Any, path: FieldPath) -> Any:
    for kind, value in path:
        if kind == "f":
            if not isinstance(obj, dict) or value not in obj:
                return _MISSING
            obj = obj[value]
        elif kind == "k":
            obj = (
                next(
                    (
                        i
                        for i in obj
                        if isinstance(i, dict) and _item_key(i, tuple(k for k, _ in value)) == value
                    ),
                    _MISSING,
                )
                if isinstance(obj, list)
                else _MISSING
            )
        else:
            wanted = json.loads(value)
            obj = wanted if isinstance(obj, list) and wanted in obj else _MISSING
        if obj is _MISSING:
            return _MISSING
    return obj


def _remove(obj: Any, path: FieldPath, owned: set[FieldPath]) -> None:
    """Remove the field at ``path``, and the map or list it leaves empty unless it is owned."""
    parent = _get(obj, path[:-1])
    kind, value = path[-1]
    if kind == "f" and isinstance(parent, dict):
        parent.pop(value, None)
    elif kind == "k" and isinstance(parent, list):
        keys = tuple(k for k, _ in value)
        parent[:] = [i for i in parent if not (isinstance(i, dict) and _item_key(i, keys) == value)]
    elif kind == "v" and isinstance(parent, list):
        wanted = json.loads(value)
        parent[:] = [i for i in parent if i != wanted]
    up = path[:-1]
    if len(up) > 1 and parent in ({}, []) and up[-1][0] == "f" and up not in owned:
        _remove(obj, up, owned)


def merge(live: Any, applied: Any, field: str | None, custom: bool) -> Any:
    """``applied`` merged into ``live``: maps by key, keyed lists by item, sets by value."""
    if isinstance(live, dict) and isinstance(applied, dict):
        result = copy.deepcopy(live)
        for key, value in applied.items():
            result[key] = merge(live.get(key), value, key, custom)
        return result
    kind, keys = _list_type(field, custom)
    if isinstance(live, list) and isinstance(applied, list) and kind == "map":
        result_list = copy.deepcopy(live)
        for item in applied:
            if not isinstance(item, dict):
                result_list.append(copy.deepcopy(item))
                continue
            key = _item_key(item, keys)
            index = next(
                (
                    n
                    for n, i in enumerate(result_list)
                    if isinstance(i, dict) and _item_key(i, keys) == key
                ),
                None,
            )
            if index is None:
                result_list.append(copy.deepcopy(item))
            else:
                result_list[index] = merge(result_list[index], item, None, custom)
        return result_list
    if isinstance(live, list) and isinstance(applied, list) and kind == "set":
        return [*copy.deepcopy(live), *(v for v in applied if v not in live)]
    return copy.deepcopy(applied)


def server_side_apply(
    resource: ResourceType,
    live: Obj | None,
    applied: Obj,
    manager: str,
    force: bool,
    now: str,
    subresource: str | None = None,
) -> Obj:
    """The object after ``manager`` applies ``applied`` (``live`` None: it is created), with its
    ``metadata.managedFields``; raises :class:`Conflict`."""
    if not manager:
        raise ApiError(
            422,
            'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
            "is required for apply patch",
        )
    custom = resource.custom
    on_status = subresource == "status"
    if "status" in resource.subresources and not on_status:
        applied = {k: v for k, v in applied.items() if k != "status"}
    mine = applied_fields(applied, custom, status=on_status)
    current = copy.deepcopy(live) if live is not None else {}
    entries: list[Obj] = list((current.get("metadata") or {}).get("managedFields") or [])

    def is_mine(entry: Obj) -> bool:
        return (
            entry.get("manager") == manager
            and entry.get("operation") == "Apply"
            and entry.get("subresource", "") == (subresource or "")
        )

    owned = {id(e): decode_fields(e.get("fieldsV1") or {}) for e in entries}
    before: set[FieldPath] = set()
    for entry in entries:
        if is_mine(entry):
            before |= owned[id(entry)]
    conflicts: list[tuple[str, FieldPath]] = []
    for entry in entries:
        if is_mine(entry):
            continue
        for path in sorted(mine & owned[id(entry)], key=format_path):
            if path[-1][0] == "k":
                continue
            if _get(current, path) != _get(applied, path):
                conflicts.append((str(entry.get("manager", "")), path))
                if force:
                    owned[id(entry)].discard(path)
    if conflicts and not force:
        raise Conflict(conflicts)
    others: set[FieldPath] = set()
    for entry in entries:
        if not is_mine(entry):
            others |= owned[id(entry)]
    meta_applied = {
        k: v for k, v in (applied.get("metadata") or {}).items() if k not in _SERVER_META
    }
    body = {k: v for k, v in applied.items() if k not in ("apiVersion", "kind", "metadata")}
    result = merge(current, {**body, "metadata": meta_applied}, None, custom)
    removed: list[FieldPath] = []
    for path in sorted(before - mine, key=len):
        if any(path[: len(r)] == r for r in removed):
            continue  # gone with its parent
        if not any(o[: len(path)] == path for o in others | mine):
            _remove(result, path, others | mine)
            removed.append(path)
    kept: list[Obj] = []
    for entry in entries:
        if is_mine(entry):
            continue
        paths = owned[id(entry)]
        if paths != decode_fields(entry.get("fieldsV1") or {}):
            if not paths:
                continue  # forced out of every field it had
            entry = {**entry, "fieldsV1": encode_fields(paths)}
        kept.append(entry)
    entry = {
        "manager": manager,
        "operation": "Apply",
        "apiVersion": resource.api_version,
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": encode_fields(mine),
    }
    if subresource:
        entry["subresource"] = subresource
    result.setdefault("metadata", {})["managedFields"] = [*kept, entry] if mine else kept
    result["apiVersion"], result["kind"] = resource.api_version, resource.kind
    meta = applied.get("metadata") or {}
    if live is None and "name" in meta:
        result["metadata"]["name"] = meta["name"]
    if "resourceVersion" in meta:  # a precondition, as in an update
        result["metadata"]["resourceVersion"] = meta["resourceVersion"]
    return result
