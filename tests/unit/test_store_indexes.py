"""The store's indexes: objects by controlling owner, creation order, and the write log."""

from __future__ import annotations

import copy
from typing import Any

from simulated_k8s_cluster.admission import admit_create
from simulated_k8s_cluster.clock import SimClock
from simulated_k8s_cluster.resources import CONFIGMAPS, NAMESPACES, PODS, ResourceType
from simulated_k8s_cluster.resources import default_registry as registry
from simulated_k8s_cluster.store import Store, controller_uid

Obj = dict[str, Any]


def _store() -> Store:
    store = Store(registry(), SimClock(0), 1000)
    for name in ("ns", "other"):
        store.create(NAMESPACES, admit_create(NAMESPACES, {"metadata": {"name": name}}))
    return store


def _ref(uid: str, controller: bool = True) -> Obj:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": uid,
        "uid": uid,
        "controller": controller,
    }


def _pod(name: str, *refs: Obj, namespace: str = "ns") -> Obj:
    meta: Obj = {"name": name, "namespace": namespace}
    if refs:
        meta["ownerReferences"] = list(refs)
    return {"metadata": meta, "spec": {"containers": [{"name": "c", "image": "i"}]}}


def _scan(store: Store, resource: ResourceType, uid: str, namespace: str | None) -> list[str]:
    """What the index must answer, by scanning every object."""
    return [
        obj["metadata"]["name"]
        for obj in store.objects(resource, namespace)
        if controller_uid(obj) == uid
    ]


def _names(objs: list[Obj]) -> list[str]:
    return [obj["metadata"]["name"] for obj in objs]


def _set_refs(store: Store, name: str, *refs: Obj) -> None:
    pod = store.require(PODS, "ns", name)
    if refs:
        pod["metadata"]["ownerReferences"] = list(refs)
    else:
        pod["metadata"].pop("ownerReferences", None)
    store.update(PODS, pod)


def _agrees(store: Store, uids: tuple[str, ...] = ("a", "b")) -> None:
    for uid in uids:
        for namespace in (None, "ns", "other"):
            assert _names(store.controlled_by(PODS, uid, namespace)) == _scan(
                store, PODS, uid, namespace
            )


def test_controlled_by_follows_creates_updates_and_deletes() -> None:
    store = _store()
    store.create(PODS, _pod("p1", _ref("a")))
    store.create(PODS, _pod("p2", _ref("b")))
    store.create(PODS, _pod("p3", _ref("a")))
    store.create(PODS, _pod("p4", _ref("a"), namespace="other"))
    store.create(PODS, _pod("p5"))
    assert _names(store.controlled_by(PODS, "a", "ns")) == ["p1", "p3"]
    assert _names(store.controlled_by(PODS, "a")) == ["p1", "p3", "p4"]
    _agrees(store)

    # An update that keeps the owner keeps the pod in its place (creation order).
    pod = store.require(PODS, "ns", "p1")
    pod["metadata"]["labels"] = {"x": "y"}
    store.update(PODS, pod)
    assert _names(store.controlled_by(PODS, "a", "ns")) == ["p1", "p3"]
    assert store.controlled_by(PODS, "a", "ns")[0]["metadata"]["labels"] == {"x": "y"}

    # The controller changes: the pod moves from one owner to the other.
    _set_refs(store, "p1", _ref("b"))
    assert _names(store.controlled_by(PODS, "a", "ns")) == ["p3"]
    assert _names(store.controlled_by(PODS, "b", "ns")) == ["p1", "p2"]
    _agrees(store)

    # Adopted later: the order is still the pods' creation order.
    _set_refs(store, "p5", _ref("b"))
    assert _names(store.controlled_by(PODS, "b", "ns")) == ["p1", "p2", "p5"]

    # A reference without ``controller`` does not count; nor do references after the first
    # controlling one.
    _set_refs(store, "p2", _ref("a", controller=False), _ref("b"), _ref("a"))
    assert _names(store.controlled_by(PODS, "b", "ns")) == ["p1", "p2", "p5"]
    assert _names(store.controlled_by(PODS, "a", "ns")) == ["p3"]
    _set_refs(store, "p3", _ref("a", controller=False))
    assert store.controlled_by(PODS, "a", "ns") == []
    _agrees(store)

    # Owner references removed altogether.
    _set_refs(store, "p5")
    assert _names(store.controlled_by(PODS, "b", "ns")) == ["p1", "p2"]

    # Deleted, and created again under the same name: now the newest.
    store.delete(PODS, "ns", "p1")
    assert _names(store.controlled_by(PODS, "b", "ns")) == ["p2"]
    store.create(PODS, _pod("p1", _ref("b")))
    assert _names(store.controlled_by(PODS, "b", "ns")) == ["p2", "p1"]
    _agrees(store)


def test_controlled_by_keeps_objects_being_deleted_until_they_are_gone() -> None:
    store = _store()
    pod = _pod("p1", _ref("a"))
    pod["metadata"]["finalizers"] = ["example.com/hold"]
    store.create(PODS, pod)
    store.delete(PODS, "ns", "p1")
    held = store.controlled_by(PODS, "a", "ns")
    assert _names(held) == ["p1"]
    assert held[0]["metadata"].get("deletionTimestamp")
    released = store.require(PODS, "ns", "p1")
    released["metadata"]["finalizers"] = []
    store.update(PODS, released)
    assert store.peek(PODS, "ns", "p1") is None
    assert store.controlled_by(PODS, "a", "ns") == []


def test_controlled_by_is_per_resource_type() -> None:
    store = _store()
    store.create(PODS, _pod("same", _ref("a")))
    cm: Obj = {"metadata": {"name": "same", "namespace": "ns", "ownerReferences": [_ref("a")]}}
    store.create(CONFIGMAPS, cm)
    assert _names(store.controlled_by(PODS, "a")) == ["same"]
    assert _names(store.controlled_by(CONFIGMAPS, "a")) == ["same"]
    store.delete(CONFIGMAPS, "ns", "same")
    assert _names(store.controlled_by(PODS, "a")) == ["same"]
    assert store.controlled_by(CONFIGMAPS, "a") == []


def test_orphaning_updates_only_the_dependents() -> None:
    store = _store()
    store.create(PODS, _pod("p1", _ref("a")))
    store.create(PODS, _pod("p2", _ref("a"), _ref("b", controller=False)))
    store.create(PODS, _pod("p3", _ref("b")))
    before = copy.deepcopy(store.peek(PODS, "ns", "p3"))
    store.orphan_dependents("a")
    assert "ownerReferences" not in store.require(PODS, "ns", "p1")["metadata"]
    assert [r["uid"] for r in store.require(PODS, "ns", "p2")["metadata"]["ownerReferences"]] == [
        "b"
    ]
    assert store.peek(PODS, "ns", "p3") == before
    assert store.controlled_by(PODS, "a") == []
    assert store.dependents("a") == []


def test_observers_see_every_write_and_last_write_tracks_types() -> None:
    store = _store()
    seen: list[tuple[str, str, str, str | None]] = []

    def observe(resource: ResourceType, event_type: str, obj: Obj, old: Obj | None) -> None:
        old_rv = old["metadata"]["resourceVersion"] if old is not None else None
        seen.append((resource.plural, event_type, obj["metadata"]["name"], old_rv))

    store.add_observer(observe)
    assert store.last_write(PODS) == 0
    created = store.create(PODS, _pod("p1"))
    assert store.last_write(PODS) == store.resource_version
    pod = store.require(PODS, "ns", "p1")
    pod["metadata"]["labels"] = {"x": "y"}
    store.update(PODS, pod)
    pods_written = store.last_write(PODS)
    store.create(CONFIGMAPS, {"metadata": {"name": "c", "namespace": "ns"}})
    assert store.last_write(PODS) == pods_written < store.last_write(CONFIGMAPS)
    store.delete(PODS, "ns", "p1")
    assert seen == [
        ("pods", "ADDED", "p1", None),
        ("pods", "MODIFIED", "p1", created["metadata"]["resourceVersion"]),
        ("configmaps", "ADDED", "c", None),
        ("pods", "DELETED", "p1", None),
    ]


def test_creation_order_grows_and_forgets_deleted_objects() -> None:
    store = _store()
    first = store.create(PODS, _pod("p1"))
    second = store.create(CONFIGMAPS, {"metadata": {"name": "c", "namespace": "ns"}})
    assert 0 < store.creation_order(PODS, first) < store.creation_order(CONFIGMAPS, second)
    store.delete(PODS, "ns", "p1")
    assert store.creation_order(PODS, first) == 0
