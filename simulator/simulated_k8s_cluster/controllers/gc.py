"""Garbage collection by owner references, and the TTL-after-finished controller for Jobs."""

from __future__ import annotations

from typing import Any

from ..resources import JOBS
from ..state import ClusterState
from ..store import FOREGROUND_FINALIZER, ORPHAN_FINALIZER

Obj = dict[str, Any]


def job_finished_at(job: Obj) -> str | None:
    """When a Job got ``Complete`` or ``Failed`` (its ``lastTransitionTime``), if it has."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return str(condition.get("lastTransitionTime"))
    return None


class GarbageCollector:
    """Deletes dependents whose owners are gone, and finishes foreground deletions."""

    name = "garbage-collector"

    def __init__(self, state: ClusterState) -> None:
        self.state = state

    def reconcile(self) -> float | None:
        store = self.state.store
        # Dependents whose owners no longer exist.
        for owner_uid in store.referenced_owner_uids():
            if store.by_uid(owner_uid) is not None:
                continue
            for resource, child in store.dependents(owner_uid):
                meta = child["metadata"]
                if meta.get("deletionTimestamp"):
                    continue
                refs = meta.get("ownerReferences") or []
                if all(store.by_uid(ref.get("uid", "")) is None for ref in refs):
                    store.delete(
                        resource, meta.get("namespace", ""), meta["name"], propagation="Background"
                    )
        # Orphan deletions: dependents lose their ownerReference, then the owner goes.
        for resource, owner in store.being_deleted():
            meta = owner["metadata"]
            if ORPHAN_FINALIZER not in (meta.get("finalizers") or []):
                continue
            store.orphan_dependents(meta["uid"])
            released = store.get(resource, meta.get("namespace", ""), meta["name"])
            if released is not None:
                released["metadata"]["finalizers"] = [
                    f for f in released["metadata"].get("finalizers") or [] if f != ORPHAN_FINALIZER
                ]
                store.update(resource, released)
        # Foreground deletions: delete dependents first, then release the owner.
        for resource, owner in store.being_deleted():
            meta = owner["metadata"]
            if FOREGROUND_FINALIZER not in (meta.get("finalizers") or []):
                continue
            remaining = store.dependents(meta["uid"])
            for child_resource, child in remaining:
                if not child["metadata"].get("deletionTimestamp"):
                    store.delete(
                        child_resource,
                        child["metadata"].get("namespace", ""),
                        child["metadata"]["name"],
                        propagation="Foreground",
                    )
            # Only dependents with blockOwnerDeletion hold the owner back.
            remaining = [
                (r, c)
                for r, c in store.dependents(meta["uid"])
                if any(
                    ref.get("uid") == meta["uid"] and ref.get("blockOwnerDeletion")
                    for ref in c["metadata"].get("ownerReferences") or []
                )
            ]
            if not remaining:
                released = store.get(resource, meta.get("namespace", ""), meta["name"])
                if released is not None:
                    released["metadata"]["finalizers"] = [
                        f
                        for f in released["metadata"].get("finalizers") or []
                        if f != FOREGROUND_FINALIZER
                    ]
                    store.update(resource, released)
        return None


class TtlAfterFinishedController:
    """Deletes finished Jobs ``ttlSecondsAfterFinished`` after they finished (foreground).

    It keeps the keys of the Jobs that set a TTL (from the store's writes), so a pass reads
    those only, not every Job of the cluster.
    """

    name = "ttl-after-finished"
    watches = (JOBS,)

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self._with_ttl: set[tuple[str, str]] = set()
        state.store.add_observer(self._observe)

    def _observe(self, resource: Any, event_type: str, obj: Obj, old: Obj | None) -> None:
        if resource is not JOBS:
            return
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if (
            event_type != "DELETED"
            and (obj.get("spec") or {}).get("ttlSecondsAfterFinished") is not None
        ):
            self._with_ttl.add(key)
        else:
            self._with_ttl.discard(key)

    def reconcile(self) -> float | None:
        store, clock = self.state.store, self.state.clock
        wake_at: float | None = None
        for namespace, name in sorted(self._with_ttl):
            job = store.peek(JOBS, namespace, name)
            if job is None:
                self._with_ttl.discard((namespace, name))
                continue
            ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
            if ttl is None or job["metadata"].get("deletionTimestamp"):
                continue
            finished = job_finished_at(job)
            if finished is None:
                continue
            expires = clock.parse(finished) + ttl
            if clock.now() >= expires:
                store.delete(JOBS, namespace, name, propagation="Foreground")
            elif wake_at is None or expires < wake_at:
                wake_at = expires
        return wake_at
