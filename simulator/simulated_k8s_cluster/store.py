"""The object store behind the simulated API server: resource versions, history, watches.

Everything here runs on the cluster's event loop thread; it is synchronous and never awaits,
so a write and the watch events it produces are one atomic step.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .clock import SimClock
from .resources import (
    NAMESPACES,
    PODS,
    ApiError,
    ResourceRegistry,
    ResourceType,
    already_exists,
    conflict,
    namespace_not_found,
    not_found,
)

Obj = dict[str, Any]
Predicate = Callable[[Mapping[str, Any]], bool]
Observer = Callable[["ResourceType", str, Obj, "Obj | None"], None]
"""Called with (resource, event type, object, previous object or None) on every write."""

FOREGROUND_FINALIZER = "foregroundDeletion"
ORPHAN_FINALIZER = "orphan"


@dataclass
class HistoryEntry:
    rv: int
    resource: ResourceType
    type: str
    obj: Obj
    old: Obj | None


@dataclass(eq=False)
class Watcher:
    """One open watch: a resource (optionally one namespace) filtered by selectors."""

    resource: ResourceType
    namespace: str | None
    matches: Predicate
    queue: asyncio.Queue[tuple[str, Obj] | None] = field(default_factory=asyncio.Queue)

    def _visible(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        if self.namespace is not None and obj["metadata"].get("namespace") != self.namespace:
            return False
        return self.matches(obj)

    def offer(self, event_type: str, obj: Obj, old: Obj | None) -> None:
        """Queue what this watcher sees of a change (selector-aware, like the watch cache)."""
        now_visible = self._visible(obj)
        if event_type == "DELETED":
            if now_visible:
                self.queue.put_nowait(("DELETED", obj))
            return
        was_visible = self._visible(old)
        if now_visible and was_visible:
            self.queue.put_nowait(("MODIFIED", obj))
        elif now_visible:
            self.queue.put_nowait(("ADDED", obj))
        elif was_visible:
            self.queue.put_nowait(("DELETED", obj))

    def close(self) -> None:
        self.queue.put_nowait(None)


class ResourceVersionTooOld(Exception):
    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


ObjectRef = tuple[ResourceType, str, str]
"""(resource, namespace, name)."""


_SCALARS = frozenset({str, int, float, bool, type(None)})


def clone(value: Any) -> Any:
    """A deep copy of JSON-like data (much cheaper than ``copy.deepcopy`` for it).

    Dicts, lists and scalars are copied here; anything else goes to ``copy.deepcopy``.
    """
    kind = type(value)
    if kind is dict:
        return {k: v if type(v) in _SCALARS else clone(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _SCALARS else clone(v) for v in value]
    if kind in _SCALARS:
        return value
    return copy.deepcopy(value)


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace") or "", meta["name"]


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid of the object's controlling owner (the first reference with ``controller``)."""
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


class Store:
    """Objects by resource type and (namespace, name), with a bounded event history."""

    def __init__(
        self, registry: ResourceRegistry, clock: SimClock, history_size: int = 50_000
    ) -> None:
        self.registry = registry
        self.clock = clock
        self._rv = 1000
        self._objects: dict[ResourceType, dict[tuple[str, str], Obj]] = {}
        self._history: deque[HistoryEntry] = deque(maxlen=history_size)
        # Until the first write falls out of the history (or a compaction), every version can
        # be watched from, as on a new etcd that has not been compacted yet.
        self._oldest_rv = 0
        self._watchers: set[Watcher] = set()
        self._listeners: list[Callable[[], None]] = []
        self._observers: list[Observer] = []
        # The resourceVersion of the last write of each resource type.
        self._written: dict[ResourceType, int] = {}
        # Creation order of every stored object, across resource types.
        self._serial = 0
        self._order: dict[ObjectRef, int] = {}
        self._by_uid: dict[str, tuple[ResourceType, str, str]] = {}
        # Indexes for the garbage collector: owner uid → dependents, and objects being deleted.
        self._dependents: dict[str, set[ObjectRef]] = {}
        self._owners_of: dict[ObjectRef, tuple[str, ...]] = {}
        self._deleting: set[ObjectRef] = set()
        # Controlling owner uid → the objects it controls, and the reverse.
        self._controlled: dict[str, set[ObjectRef]] = {}
        self._controller_of: dict[ObjectRef, str] = {}

    # --- reading ---------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._rv

    @property
    def oldest_resource_version(self) -> int:
        """Watches from a version older than this get ``410 Gone``."""
        if self._oldest_rv == 0:
            return 0
        return max(self._oldest_rv, self._history[0].rv - 1 if self._history else self._rv)

    def objects(
        self, resource: ResourceType, namespace: str | None = None, ordered: bool = False
    ) -> Iterator[Obj]:
        """Stored objects, not copies: read them, never mutate them.

        In creation order, or by (namespace, name) with ``ordered`` (what list paging needs).
        """
        bucket = self._objects.get(resource, {})
        items = sorted(bucket.items()) if ordered else list(bucket.items())
        for (ns, _), obj in items:
            if namespace is None or ns == namespace:
                yield obj

    def dependents(self, owner_uid: str) -> list[tuple[ResourceType, Obj]]:
        """Objects whose ownerReferences name ``owner_uid`` (stored objects, read-only)."""
        found = []
        for resource, namespace, name in self._dependents.get(owner_uid, ()):
            obj = self.peek(resource, namespace, name)
            if obj is not None:
                found.append((resource, obj))
        return found

    def controlled_by(
        self, resource: ResourceType, owner_uid: str, namespace: str | None = None
    ) -> list[Obj]:
        """Objects of ``resource`` whose controlling ownerReference names ``owner_uid``.

        Stored objects (read-only), in creation order, as :meth:`objects` yields them.
        """
        refs = [
            ref
            for ref in self._controlled.get(owner_uid, ())
            if ref[0] is resource and (namespace is None or ref[1] == namespace)
        ]
        if len(refs) > 1:
            refs.sort(key=lambda ref: self._order.get(ref, 0))
        found = []
        for ref in refs:
            obj = self.peek(*ref)
            if obj is not None:
                found.append(obj)
        return found

    def creation_order(self, resource: ResourceType, obj: Mapping[str, Any]) -> int:
        """A number that grows with the creation of stored objects (0: not stored)."""
        namespace, name = _key(obj)
        return self._order.get((resource, namespace, name), 0)

    def last_write(self, resource: ResourceType) -> int:
        """The resourceVersion of the latest write of ``resource`` (0: none yet)."""
        return self._written.get(resource, 0)

    def referenced_owner_uids(self) -> list[str]:
        """Every uid some object names as its owner."""
        return list(self._dependents)

    def being_deleted(self) -> list[tuple[ResourceType, Obj]]:
        """Objects with a ``deletionTimestamp`` (held by finalizers or graceful deletion)."""
        found = []
        for resource, namespace, name in list(self._deleting):
            obj = self.peek(resource, namespace, name)
            if obj is not None:
                found.append((resource, obj))
        return found

    def get(self, resource: ResourceType, namespace: str, name: str) -> Obj | None:
        obj = self._objects.get(resource, {}).get((namespace or "", name))
        return clone(obj) if obj is not None else None

    def peek(self, resource: ResourceType, namespace: str, name: str) -> Obj | None:
        """The stored object itself (read-only)."""
        return self._objects.get(resource, {}).get((namespace or "", name))

    def require(self, resource: ResourceType, namespace: str, name: str) -> Obj:
        obj = self.get(resource, namespace, name)
        if obj is None:
            raise not_found(resource, name)
        return obj

    def by_uid(self, uid: str) -> Obj | None:
        where = self._by_uid.get(uid)
        if where is None:
            return None
        return self.peek(*where)

    def list(
        self, resource: ResourceType, namespace: str | None = None, matches: Predicate | None = None
    ) -> list[Obj]:
        return [
            clone(obj)
            for obj in self.objects(resource, namespace)
            if matches is None or matches(obj)
        ]

    # --- writing ---------------------------------------------------------------------------

    def add_listener(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def add_observer(self, observer: Observer) -> None:
        """Call ``observer`` with every write, before the listeners."""
        self._observers.append(observer)

    def _index(self, resource: ResourceType, event_type: str, obj: Obj) -> None:
        meta = obj["metadata"]
        ref = (resource, meta.get("namespace") or "", meta["name"])
        for uid in self._owners_of.pop(ref, ()):
            dependents = self._dependents.get(uid)
            if dependents is not None:
                dependents.discard(ref)
                if not dependents:
                    del self._dependents[uid]
        self._deleting.discard(ref)
        controller = self._controller_of.pop(ref, None)
        if controller is not None:
            controlled = self._controlled[controller]
            controlled.discard(ref)
            if not controlled:
                del self._controlled[controller]
        if event_type == "DELETED":
            self._order.pop(ref, None)
            return
        if event_type == "ADDED":
            self._serial += 1
            self._order[ref] = self._serial
        uids = tuple(r.get("uid", "") for r in meta.get("ownerReferences") or [])
        if uids:
            self._owners_of[ref] = uids
            for uid in uids:
                self._dependents.setdefault(uid, set()).add(ref)
            controller = controller_uid(obj)
            if controller is not None:
                self._controller_of[ref] = controller
                self._controlled.setdefault(controller, set()).add(ref)
        if meta.get("deletionTimestamp"):
            self._deleting.add(ref)

    def _record(self, resource: ResourceType, event_type: str, obj: Obj, old: Obj | None) -> None:
        self._index(resource, event_type, obj)
        if self._oldest_rv == 0 and len(self._history) == self._history.maxlen:
            self._oldest_rv = self._history[0].rv  # the oldest write is forgotten now
        self._history.append(HistoryEntry(self._rv, resource, event_type, obj, old))
        self._written[resource] = self._rv
        for watcher in list(self._watchers):
            if watcher.resource is resource:
                watcher.offer(event_type, obj, old)
        for observer in self._observers:
            observer(resource, event_type, obj, old)
        for listener in self._listeners:
            listener()

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def check_namespace_open(self, resource: ResourceType, obj: Obj) -> None:
        """What the namespace lifecycle admission checks on a create (dry runs included): the
        object's namespace exists and is not being terminated."""
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or ""
        if not resource.namespaced:
            return
        if not namespace:
            raise ApiError(
                400,
                "the namespace of the provided object does not match the "
                "namespace sent on the request",
            )
        ns_obj = self.peek(NAMESPACES, "", namespace)
        if ns_obj is None:
            raise namespace_not_found(namespace)
        if ns_obj["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                f'{resource.plural} "{meta["name"]}" is forbidden: unable to create new '
                f"content in namespace {namespace} because it is being terminated",
                reason="Forbidden",
            )

    def create(self, resource: ResourceType, obj: Obj) -> Obj:
        """Store a new object (name already resolved); 409 when it exists."""
        obj = clone(obj)
        meta = obj.setdefault("metadata", {})
        self.check_namespace_open(resource, obj)
        if not resource.namespaced:
            meta.pop("namespace", None)
        bucket = self._objects.setdefault(resource, {})
        key = _key(obj)
        if key in bucket:
            raise already_exists(resource, meta["name"])
        obj["apiVersion"] = resource.api_version
        obj["kind"] = resource.kind
        meta["uid"] = meta.get("uid") or str(uuid.uuid4())
        meta["creationTimestamp"] = self.clock.timestamp()
        meta.pop("deletionTimestamp", None)
        meta.pop("deletionGracePeriodSeconds", None)
        if "spec" in obj or resource.custom:
            meta["generation"] = 1
        meta["resourceVersion"] = self._next_rv()
        bucket[key] = obj
        self._by_uid[meta["uid"]] = (resource, *key)
        self._record(resource, "ADDED", obj, None)
        return clone(obj)

    def update(self, resource: ResourceType, obj: Obj, check_version: bool = False) -> Obj:
        """Replace a stored object. A no-op write changes nothing and sends no event."""
        obj = clone(obj)
        bucket = self._objects.setdefault(resource, {})
        key = _key(obj) if resource.namespaced else ("", obj["metadata"]["name"])
        current = bucket.get(key)
        if current is None:
            raise not_found(resource, obj["metadata"]["name"])
        meta = obj["metadata"]
        requested_rv = meta.get("resourceVersion")
        current_rv = current["metadata"]["resourceVersion"]
        if check_version and requested_rv and requested_rv != current_rv:
            raise conflict(
                resource,
                meta["name"],
                "the object has been modified; please apply your changes to the "
                "latest version and try again",
            )
        # Immutable metadata is the server's.
        for immutable in ("uid", "creationTimestamp", "namespace", "name"):
            if immutable in current["metadata"]:
                meta[immutable] = current["metadata"][immutable]
            else:
                meta.pop(immutable, None)
        if current["metadata"].get("deletionTimestamp"):
            meta["deletionTimestamp"] = current["metadata"]["deletionTimestamp"]
            if "deletionGracePeriodSeconds" in current["metadata"]:
                meta["deletionGracePeriodSeconds"] = current["metadata"][
                    "deletionGracePeriodSeconds"
                ]
        obj["apiVersion"] = resource.api_version
        obj["kind"] = resource.kind
        meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        if "generation" in current["metadata"]:
            generation = current["metadata"]["generation"]
            if obj.get("spec") != current.get("spec"):
                generation += 1
            meta["generation"] = generation
        if obj == current:
            return clone(current)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self._remove(resource, obj)
        meta["resourceVersion"] = self._next_rv()
        bucket[key] = obj
        self._record(resource, "MODIFIED", obj, current)
        return clone(obj)

    def _remove(self, resource: ResourceType, obj: Obj) -> Obj:
        bucket = self._objects.get(resource, {})
        key = _key(obj) if resource.namespaced else ("", obj["metadata"]["name"])
        bucket.pop(key, None)
        self._by_uid.pop(obj["metadata"].get("uid", ""), None)
        obj = clone(obj)
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self._record(resource, "DELETED", obj, None)
        return clone(obj)

    def delete(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        propagation: str | None = None,
        grace_period_seconds: int | None = None,
        precondition_uid: str | None = None,
        precondition_rv: str | None = None,
    ) -> Obj:
        """Delete as the API server does: finalizers, graceful pods, propagation policies."""
        current = self.peek(resource, namespace, name)
        if current is None:
            raise not_found(resource, name)
        meta = current["metadata"]
        if precondition_uid and precondition_uid != meta["uid"]:
            raise conflict(
                resource,
                name,
                f"Precondition failed: UID in precondition: {precondition_uid}, "
                f"UID in object meta: {meta['uid']}",
            )
        if precondition_rv and precondition_rv != meta["resourceVersion"]:
            raise conflict(
                resource,
                name,
                f"Precondition failed: ResourceVersion in precondition: "
                f"{precondition_rv}, ResourceVersion in object meta: "
                f"{meta['resourceVersion']}",
            )
        policy = propagation or resource.default_propagation
        if policy not in ("Orphan", "Background", "Foreground"):
            raise ApiError(
                422,
                f'propagationPolicy: Unsupported value: "{policy}": supported '
                'values: "Foreground", "Background", "Orphan"',
            )
        obj = clone(current)
        obj_meta = obj["metadata"]
        finalizers = list(obj_meta.get("finalizers") or [])
        # Orphan: the garbage collector removes the ownerReferences, then this finalizer.
        if policy == "Orphan" and ORPHAN_FINALIZER not in finalizers:
            finalizers.append(ORPHAN_FINALIZER)
        if policy == "Foreground" and FOREGROUND_FINALIZER not in finalizers:
            finalizers.append(FOREGROUND_FINALIZER)
        graceful = (
            resource is PODS
            and obj.get("spec", {}).get("nodeName")
            and obj.get("status", {}).get("phase") not in ("Succeeded", "Failed")
            and (grace_period_seconds is None or grace_period_seconds > 0)
        )
        if graceful:
            grace = grace_period_seconds
            if grace is None:
                grace = obj.get("spec", {}).get("terminationGracePeriodSeconds", 30)
            if not obj_meta.get("deletionTimestamp"):
                obj_meta["deletionTimestamp"] = self.clock.timestamp(self.clock.now() + grace)
                obj_meta["deletionGracePeriodSeconds"] = grace
        if finalizers or graceful:
            if not obj_meta.get("deletionTimestamp"):
                obj_meta["deletionTimestamp"] = self.clock.timestamp()
                obj_meta["deletionGracePeriodSeconds"] = 0
            obj_meta["finalizers"] = finalizers
            if obj == current:
                return clone(current)
            return self._write_deleting(resource, obj, current)
        return self._remove(resource, obj)

    def _write_deleting(self, resource: ResourceType, obj: Obj, current: Obj) -> Obj:
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self._objects[resource][_key(obj)] = obj
        self._record(resource, "MODIFIED", obj, current)
        return clone(obj)

    def finish_deletion(self, resource: ResourceType, namespace: str, name: str) -> None:
        """Remove an object whose graceful deletion the kubelet has confirmed."""
        current = self.peek(resource, namespace, name)
        if current is not None:
            if current["metadata"].get("finalizers"):
                return
            self._remove(resource, current)

    def orphan_dependents(self, owner_uid: str) -> None:
        """Remove ``owner_uid`` from its dependents' ownerReferences (by type, then age)."""
        types = {resource: i for i, resource in enumerate(self._objects)}
        refs = sorted(
            self._dependents.get(owner_uid, ()),
            key=lambda ref: (types.get(ref[0], len(types)), self._order.get(ref, 0)),
        )
        for resource, namespace, name in refs:
            obj = self.peek(resource, namespace, name)
            if obj is None:
                continue
            refs_of = obj["metadata"].get("ownerReferences") or []
            updated = clone(obj)
            kept = [ref for ref in refs_of if ref.get("uid") != owner_uid]
            if kept:
                updated["metadata"]["ownerReferences"] = kept
            else:
                updated["metadata"].pop("ownerReferences", None)
            self.update(resource, updated)

    # --- watching --------------------------------------------------------------------------

    def open_watch(
        self,
        resource: ResourceType,
        namespace: str | None,
        matches: Predicate,
        resource_version: str | None,
    ) -> Watcher:
        """A watcher primed like the API server: initial ADDEDs, or history after a version."""
        watcher = Watcher(resource, namespace, matches)
        if not resource_version or resource_version == "0":
            # By namespace and name, as the API server's watch cache sends them.
            for obj in self.objects(resource, namespace, ordered=True):
                if matches(obj):
                    watcher.queue.put_nowait(("ADDED", obj))
        else:
            try:
                start = int(resource_version)
            except ValueError as exc:
                raise ApiError(400, f"invalid resource version: {resource_version}") from exc
            if start < self.oldest_resource_version:
                raise ResourceVersionTooOld(start, self.oldest_resource_version)
            for entry in self._history:
                if entry.rv > start and entry.resource is resource:
                    watcher.offer(entry.type, entry.obj, entry.old)
        self._watchers.add(watcher)
        return watcher

    def close_watch(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    @property
    def open_watches(self) -> int:
        return len(self._watchers)

    def drop_watches(self) -> None:
        """End every open watch stream (what an API server restart does to clients)."""
        for watcher in list(self._watchers):
            watcher.close()
        self._watchers.clear()

    def compact(self) -> None:
        """Forget the history: every older resourceVersion now answers ``410 Gone``."""
        self._history.clear()
        self._oldest_rv = self._rv
