"""The simulated cluster's object store: resource versions, events, history and deletion."""

from __future__ import annotations

from typing import Any

import pytest

from simulated_k8s_cluster.admission import admit_create
from simulated_k8s_cluster.clock import SimClock
from simulated_k8s_cluster.config import ClusterConfig
from simulated_k8s_cluster.controllers.gc import GarbageCollector
from simulated_k8s_cluster.events import EventRecorder
from simulated_k8s_cluster.resources import CONFIGMAPS, NAMESPACES, PODS, SECRETS, ApiError
from simulated_k8s_cluster.resources import default_registry as registry
from simulated_k8s_cluster.state import ClusterState
from simulated_k8s_cluster.store import ResourceVersionTooOld, Store, Watcher


def _store(history_size: int = 1000) -> Store:
    store = Store(registry(), SimClock(0), history_size)
    store.create(NAMESPACES, admit_create(NAMESPACES, {"metadata": {"name": "ns"}}))
    return store


def _cm(name: str, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", **meta}, "data": {"a": "1"}}


def _everything(obj: Any) -> bool:
    return True


def _drain(watcher: Watcher) -> list[tuple[str, str]]:
    out = []
    while not watcher.queue.empty():
        item = watcher.queue.get_nowait()
        assert item is not None
        out.append((item[0], item[1]["metadata"]["name"]))
    return out


def test_resource_versions_increase_on_every_write() -> None:
    store = _store()
    versions = [int(store.create(CONFIGMAPS, _cm("a"))["metadata"]["resourceVersion"])]
    obj = store.get(CONFIGMAPS, "ns", "a")
    assert obj is not None
    obj["data"] = {"a": "2"}
    versions.append(int(store.update(CONFIGMAPS, obj)["metadata"]["resourceVersion"]))
    versions.append(
        int(
            store.create(SECRETS, {"metadata": {"name": "s", "namespace": "ns"}})["metadata"][
                "resourceVersion"
            ]
        )
    )
    versions.append(int(store.delete(CONFIGMAPS, "ns", "a")["metadata"]["resourceVersion"]))
    assert versions == sorted(versions)
    assert len(set(versions)) == 4
    assert store.resource_version == versions[-1]


def test_create_sets_server_fields_and_refuses_duplicates() -> None:
    store = _store()
    created = store.create(CONFIGMAPS, _cm("a"))
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"] and meta["resourceVersion"]
    assert created["apiVersion"] == "v1" and created["kind"] == "ConfigMap"
    with pytest.raises(ApiError) as err:
        store.create(CONFIGMAPS, _cm("a"))
    assert err.value.code == 409 and err.value.reason == "AlreadyExists"
    with pytest.raises(ApiError) as err:
        store.create(CONFIGMAPS, {"metadata": {"name": "b", "namespace": "missing"}})
    assert err.value.code == 404


def test_returned_objects_are_copies() -> None:
    store = _store()
    created = store.create(CONFIGMAPS, _cm("a"))
    created["data"]["a"] = "mutated"
    got = store.get(CONFIGMAPS, "ns", "a")
    assert got is not None and got["data"] == {"a": "1"}


def test_noop_update_sends_no_event() -> None:
    store = _store()
    created = store.create(CONFIGMAPS, _cm("a"))
    watcher = store.open_watch(CONFIGMAPS, "ns", _everything, str(store.resource_version))
    rv = store.resource_version
    same = store.update(CONFIGMAPS, created)
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert store.resource_version == rv
    assert _drain(watcher) == []
    changed = dict(created, data={"a": "2"})
    store.update(CONFIGMAPS, changed)
    assert _drain(watcher) == [("MODIFIED", "a")]


def test_update_with_stale_version_conflicts() -> None:
    store = _store()
    created = store.create(CONFIGMAPS, _cm("a"))
    store.update(CONFIGMAPS, dict(created, data={"a": "2"}))
    with pytest.raises(ApiError) as err:
        store.update(CONFIGMAPS, dict(created, data={"a": "3"}), check_version=True)
    assert err.value.code == 409
    # Without the check (a controller's write), the last writer wins.
    assert store.update(CONFIGMAPS, dict(created, data={"a": "3"}))["data"] == {"a": "3"}


def test_update_keeps_immutable_metadata() -> None:
    store = _store()
    created = store.create(CONFIGMAPS, _cm("a"))
    changed = dict(created, data={"a": "2"})
    changed["metadata"] = dict(created["metadata"], uid="forged", creationTimestamp="2000")
    updated = store.update(CONFIGMAPS, changed)
    assert updated["metadata"]["uid"] == created["metadata"]["uid"]
    assert updated["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]


def test_generation_counts_spec_changes() -> None:
    store = _store()
    pod = store.create(
        PODS,
        admit_create(
            PODS,
            {
                "metadata": {"name": "p", "namespace": "ns"},
                "spec": {"containers": [{"name": "c", "image": "i:1"}]},
            },
        ),
    )
    assert pod["metadata"]["generation"] == 1
    pod["status"]["phase"] = "Running"
    pod = store.update(PODS, pod)
    assert pod["metadata"]["generation"] == 1
    pod["spec"]["activeDeadlineSeconds"] = 5
    assert store.update(PODS, pod)["metadata"]["generation"] == 2


def test_watch_replays_history_after_a_version() -> None:
    store = _store()
    store.create(CONFIGMAPS, _cm("a"))
    rv = str(store.resource_version)
    store.create(CONFIGMAPS, _cm("b"))
    store.create(SECRETS, {"metadata": {"name": "s", "namespace": "ns"}})
    store.delete(CONFIGMAPS, "ns", "a")
    watcher = store.open_watch(CONFIGMAPS, "ns", _everything, rv)
    assert _drain(watcher) == [("ADDED", "b"), ("DELETED", "a")]
    initial = store.open_watch(CONFIGMAPS, None, _everything, None)
    assert _drain(initial) == [("ADDED", "b")]
    assert store.open_watches == 2
    store.drop_watches()
    assert watcher.queue.get_nowait() is None
    assert store.open_watches == 0


def test_selector_aware_watch() -> None:
    store = _store()
    watcher = store.open_watch(
        CONFIGMAPS, "ns", lambda o: (o["metadata"].get("labels") or {}).get("app") == "web", None
    )
    obj = store.create(CONFIGMAPS, _cm("a"))
    obj = store.update(CONFIGMAPS, dict(obj, metadata=dict(obj["metadata"], labels={"app": "web"})))
    obj = store.update(CONFIGMAPS, dict(obj, data={"a": "2"}))
    obj = store.update(CONFIGMAPS, dict(obj, metadata=dict(obj["metadata"], labels={})))
    store.delete(CONFIGMAPS, "ns", "a")
    assert _drain(watcher) == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]


def test_history_limit_and_compaction() -> None:
    store = _store(history_size=3)
    start = store.resource_version
    for name in "abcde":
        store.create(CONFIGMAPS, _cm(name))
    # Only the last three writes are kept: watching from before them is too old.
    with pytest.raises(ResourceVersionTooOld) as err:
        store.open_watch(CONFIGMAPS, "ns", _everything, str(start + 1))
    assert err.value.requested == start + 1
    watcher = store.open_watch(CONFIGMAPS, "ns", _everything, str(start + 2))
    assert _drain(watcher) == [("ADDED", "c"), ("ADDED", "d"), ("ADDED", "e")]

    current = store.resource_version
    store.create(CONFIGMAPS, _cm("f"))
    store.compact()
    with pytest.raises(ResourceVersionTooOld):
        store.open_watch(CONFIGMAPS, "ns", _everything, str(current))
    assert store.oldest_resource_version == store.resource_version
    assert (
        _drain(store.open_watch(CONFIGMAPS, "ns", _everything, str(store.resource_version))) == []
    )


def test_invalid_resource_version_is_400() -> None:
    with pytest.raises(ApiError) as err:
        _store().open_watch(CONFIGMAPS, "ns", _everything, "abc")
    assert err.value.code == 400


def test_finalizers_keep_an_object_until_removed() -> None:
    store = _store()
    store.create(CONFIGMAPS, _cm("a", finalizers=["example.com/x"]))
    watcher = store.open_watch(CONFIGMAPS, "ns", _everything, str(store.resource_version))
    deleting = store.delete(CONFIGMAPS, "ns", "a")
    assert deleting["metadata"]["deletionTimestamp"]
    assert store.get(CONFIGMAPS, "ns", "a") is not None
    # A second delete changes nothing.
    again = store.delete(CONFIGMAPS, "ns", "a")
    assert again["metadata"]["resourceVersion"] == deleting["metadata"]["resourceVersion"]
    # Removing the last finalizer completes the deletion.
    deleting["metadata"]["finalizers"] = []
    store.update(CONFIGMAPS, deleting)
    assert store.get(CONFIGMAPS, "ns", "a") is None
    assert _drain(watcher) == [("MODIFIED", "a"), ("DELETED", "a")]


def test_delete_preconditions_and_policy() -> None:
    store = _store()
    store.create(CONFIGMAPS, _cm("a"))
    with pytest.raises(ApiError) as err:
        store.delete(CONFIGMAPS, "ns", "a", precondition_uid="other")
    assert err.value.code == 409
    with pytest.raises(ApiError) as err:
        store.delete(CONFIGMAPS, "ns", "a", precondition_rv="1")
    assert err.value.code == 409
    with pytest.raises(ApiError) as err:
        store.delete(CONFIGMAPS, "ns", "a", propagation="Sometimes")
    assert err.value.code == 422
    with pytest.raises(ApiError) as err:
        store.delete(CONFIGMAPS, "ns", "missing")
    assert err.value.code == 404


def test_orphan_removes_owner_references() -> None:
    store = _store()
    owner = store.create(CONFIGMAPS, _cm("owner"))
    other = {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "other-uid"}
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
    }
    store.create(CONFIGMAPS, _cm("only", ownerReferences=[ref]))
    store.create(CONFIGMAPS, _cm("both", ownerReferences=[ref, other]))
    deleting = store.delete(CONFIGMAPS, "ns", "owner", propagation="Orphan")
    # As the API server: the owner is held by the orphan finalizer for the garbage collector.
    assert deleting["metadata"]["finalizers"] == ["orphan"]
    assert deleting["metadata"]["deletionTimestamp"]
    collector = GarbageCollector(
        ClusterState(
            config=ClusterConfig.load({}),
            clock=store.clock,
            registry=store.registry,
            store=store,
            events=EventRecorder(store, store.clock),
        )
    )
    collector.reconcile()
    only = store.get(CONFIGMAPS, "ns", "only")
    both = store.get(CONFIGMAPS, "ns", "both")
    assert only is not None and "ownerReferences" not in only["metadata"]
    assert both is not None and both["metadata"]["ownerReferences"] == [other]
    assert store.get(CONFIGMAPS, "ns", "owner") is None


def test_foreground_delete_adds_the_finalizer() -> None:
    store = _store()
    store.create(CONFIGMAPS, _cm("owner"))
    deleting = store.delete(CONFIGMAPS, "ns", "owner", propagation="Foreground")
    assert deleting["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert deleting["metadata"]["deletionTimestamp"]


def test_listeners_hear_every_write() -> None:
    store = _store()
    heard: list[int] = []
    store.add_listener(lambda: heard.append(store.resource_version))
    store.create(CONFIGMAPS, _cm("a"))
    store.delete(CONFIGMAPS, "ns", "a")
    assert len(heard) == 2 and heard[0] < heard[1]
