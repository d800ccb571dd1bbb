"""Watches through both clients' ``Watch`` helpers: initial events, resuming, selectors,
bookmarks, timeouts, ``410 Gone``, restarts and deletions behind the client's back."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import kubernetes
import kubernetes_asyncio
import pytest
from kubernetes.client.rest import ApiException

CONFIG = {"timeScale": 0, "namespaces": ["batch"], "nodePools": [], "bookmarkIntervalSeconds": 0.2}
pytestmark = pytest.mark.simulated_cluster(CONFIG)
DEADLINE = 10.0
# Every namespace has this ConfigMap, as in a real cluster.
ROOT_CA = "kube-root-ca.crt"


def _cm(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "data": {"v": "1"}}


class SyncWatch:
    """A ``kubernetes.watch.Watch`` consumed on a thread, so the test can act meanwhile."""

    def __init__(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.watch = kubernetes.watch.Watch()
        self.events: queue.Queue[dict[str, Any] | BaseException | None] = queue.Queue()
        kwargs.setdefault("timeout_seconds", 30)
        self.thread = threading.Thread(target=self._run, args=(func, args, kwargs), daemon=True)
        self.thread.start()

    def _run(self, func: Callable[..., Any], args: Any, kwargs: Any) -> None:
        try:
            for event in self.watch.stream(func, *args, **kwargs):
                self.events.put(event)
        except BaseException as exc:
            self.events.put(exc)
        self.events.put(None)

    def next(self, timeout: float = DEADLINE) -> dict[str, Any] | None:
        """The next event; None when the stream ended."""
        item = self.events.get(timeout=timeout)
        if isinstance(item, BaseException):
            raise item
        return item

    def until(self, name: str) -> list[tuple[str, str]]:
        """``(type, name)`` of every event up to and including the first about ``name``."""
        seen = []
        while True:
            event = self.next()
            assert event is not None, f"stream ended before an event about {name}: {seen}"
            seen.append((event["type"], event["object"].metadata.name))
            if seen[-1][1] == name:
                return seen

    def ended(self, timeout: float = DEADLINE) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()


async def _until_async(stream: Any, name: str) -> list[tuple[str, str]]:
    seen = []
    while True:
        event = await asyncio.wait_for(stream.__anext__(), DEADLINE)
        seen.append((event["type"], event["object"].metadata.name))
        if seen[-1][1] == name:
            return seen


async def _wait_async(condition: Callable[[], Any], message: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {message}")
        await asyncio.sleep(0.01)


# --- initial state and resuming -----------------------------------------------------------------


def test_initial_added_events_sync(v1: kubernetes.client.CoreV1Api) -> None:
    for name in ("a", "b", "c"):
        v1.create_namespaced_config_map("batch", _cm(name))
    w = SyncWatch(v1.list_namespaced_config_map, "batch")
    # In name order, as the API server sends them.
    assert w.until(ROOT_CA) == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c"), ("ADDED", ROOT_CA)]
    # Then live events.
    v1.patch_namespaced_config_map("b", "batch", {"data": {"v": "2"}})
    v1.delete_namespaced_config_map("a", "batch")
    assert w.until("a") == [("MODIFIED", "b"), ("DELETED", "a")]


async def test_initial_added_events_async(
    v1: kubernetes.client.CoreV1Api, av1: kubernetes_asyncio.client.CoreV1Api
) -> None:
    for name in ("a", "b"):
        v1.create_namespaced_config_map("batch", _cm(name))
    async with kubernetes_asyncio.watch.Watch() as w:
        stream = w.stream(av1.list_namespaced_config_map, "batch", timeout_seconds=30)
        assert await _until_async(stream, ROOT_CA) == [
            ("ADDED", "a"),
            ("ADDED", "b"),
            ("ADDED", ROOT_CA),
        ]
        await av1.create_namespaced_config_map("batch", _cm("c"))
        event = await asyncio.wait_for(stream.__anext__(), DEADLINE)
        assert (event["type"], event["object"].metadata.name) == ("ADDED", "c")
        assert event["object"].data == {"v": "1"}
        assert isinstance(event["object"], kubernetes_asyncio.client.V1ConfigMap)


def _history(v1: kubernetes.client.CoreV1Api) -> str:
    """Make some changes; return the resourceVersion from before them."""
    v1.create_namespaced_config_map("batch", _cm("old"))
    v1.create_namespaced_config_map("batch", _cm("gone"))
    rv: str = v1.list_namespaced_config_map("batch").metadata.resource_version
    v1.create_namespaced_config_map("batch", _cm("new"))
    v1.patch_namespaced_config_map("old", "batch", {"data": {"v": "2"}})
    v1.delete_namespaced_config_map("gone", "batch")
    v1.create_namespaced_config_map("batch", _cm("marker"))
    return rv


MISSED = [("ADDED", "new"), ("MODIFIED", "old"), ("DELETED", "gone"), ("ADDED", "marker")]


def test_resume_from_resource_version_sync(v1: kubernetes.client.CoreV1Api) -> None:
    rv = _history(v1)
    w = SyncWatch(v1.list_namespaced_config_map, "batch", resource_version=rv)
    assert w.until("marker") == MISSED


async def test_resume_from_resource_version_async(
    v1: kubernetes.client.CoreV1Api, av1: kubernetes_asyncio.client.CoreV1Api
) -> None:
    rv = _history(v1)
    async with kubernetes_asyncio.watch.Watch() as w:
        stream = w.stream(
            av1.list_namespaced_config_map, "batch", resource_version=rv, timeout_seconds=30
        )
        assert await _until_async(stream, "marker") == MISSED
        # The helper remembers where it is: the last event's version.
        assert int(w.resource_version) > int(rv)


def test_resume_replays_only_the_watched_resource_and_namespace(
    simulated_cluster: Any, v1: kubernetes.client.CoreV1Api
) -> None:
    rv = v1.list_namespaced_config_map("batch").metadata.resource_version
    v1.create_namespaced_config_map("default", _cm("elsewhere"))
    v1.create_namespaced_secret("batch", {"metadata": {"name": "not-a-cm"}})
    v1.create_namespaced_config_map("batch", _cm("here"))
    w = SyncWatch(v1.list_namespaced_config_map, "batch", resource_version=rv)
    assert w.until("here") == [("ADDED", "here")]
    everywhere = SyncWatch(v1.list_config_map_for_all_namespaces, resource_version=rv)
    assert everywhere.until("here") == [("ADDED", "elsewhere"), ("ADDED", "here")]


# --- selectors ----------------------------------------------------------------------------------


def test_selector_aware_events_sync(v1: kubernetes.client.CoreV1Api) -> None:
    v1.create_namespaced_config_map("batch", _cm("x"))
    w = SyncWatch(v1.list_namespaced_config_map, "batch", label_selector="app=web")
    v1.patch_namespaced_config_map("x", "batch", {"metadata": {"labels": {"app": "web"}}})
    v1.patch_namespaced_config_map("x", "batch", {"data": {"v": "2"}})
    v1.patch_namespaced_config_map("x", "batch", {"metadata": {"labels": {"app": "db"}}})
    v1.create_namespaced_config_map("batch", _cm("ignored", app="db"))
    v1.create_namespaced_config_map("batch", _cm("marker", app="web"))
    assert w.until("marker") == [
        ("ADDED", "x"),
        ("MODIFIED", "x"),
        ("DELETED", "x"),
        ("ADDED", "marker"),
    ]


async def test_selector_aware_events_async(
    v1: kubernetes.client.CoreV1Api, av1: kubernetes_asyncio.client.CoreV1Api
) -> None:
    v1.create_namespaced_pod(
        "batch",
        {
            "metadata": {"name": "p"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox:1.36"}],
            },
        },
    )
    rv = v1.list_namespaced_pod("batch").metadata.resource_version
    # Changes after rv, replayed selector-aware from history.
    v1.patch_namespaced_pod_status("p", "batch", {"status": {"phase": "Running"}})
    v1.patch_namespaced_pod_status("p", "batch", {"status": {"phase": "Succeeded"}})
    v1.create_namespaced_pod(
        "batch",
        {
            "metadata": {"name": "marker"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox:1.36"}],
            },
        },
    )
    v1.patch_namespaced_pod_status("marker", "batch", {"status": {"phase": "Running"}})
    async with kubernetes_asyncio.watch.Watch() as w:
        stream = w.stream(
            av1.list_namespaced_pod,
            "batch",
            resource_version=rv,
            field_selector="status.phase=Running",
            timeout_seconds=30,
        )
        assert await _until_async(stream, "marker") == [
            ("ADDED", "p"),
            ("DELETED", "p"),
            ("ADDED", "marker"),
        ]


# --- bookmarks, timeouts, 410 -------------------------------------------------------------------


def test_bookmarks_sync(v1: kubernetes.client.CoreV1Api) -> None:
    v1.create_namespaced_config_map("batch", _cm("a"))
    w = SyncWatch(v1.list_namespaced_config_map, "batch", allow_watch_bookmarks=True)
    assert w.until(ROOT_CA) == [("ADDED", "a"), ("ADDED", ROOT_CA)]
    initial_end = w.next()
    assert initial_end["type"] == "BOOKMARK"
    assert initial_end["raw_object"]["metadata"]["annotations"] == {
        "k8s.io/initial-events-end": "true"
    }
    v1.create_namespaced_config_map("default", _cm("elsewhere"))
    expected = v1.list_namespaced_config_map("batch").metadata.resource_version
    event = w.next()
    assert event["type"] == "BOOKMARK"
    assert event["raw_object"]["metadata"]["resourceVersion"] == expected
    assert w.watch.resource_version == expected


def test_no_bookmarks_unless_asked(simulated_cluster: Any, v1: kubernetes.client.CoreV1Api) -> None:
    w = SyncWatch(v1.list_namespaced_config_map, "batch", timeout_seconds=1)
    assert w.ended(DEADLINE)
    assert w.until(ROOT_CA) == [("ADDED", ROOT_CA)]
    assert w.next() is None  # the stream ended without a bookmark


async def test_bookmarks_async(av1: kubernetes_asyncio.client.CoreV1Api) -> None:
    async with kubernetes_asyncio.watch.Watch() as w:
        stream = w.stream(
            av1.list_namespaced_config_map, "batch", allow_watch_bookmarks=True, timeout_seconds=30
        )
        assert await _until_async(stream, ROOT_CA) == [("ADDED", ROOT_CA)]
        event = await asyncio.wait_for(stream.__anext__(), DEADLINE)
        assert event["type"] == "BOOKMARK"
        assert w.resource_version == event["raw_object"]["metadata"]["resourceVersion"]


def test_timeout_seconds_ends_stream_sync(v1: kubernetes.client.CoreV1Api) -> None:
    started = time.monotonic()
    events = list(
        kubernetes.watch.Watch().stream(v1.list_namespaced_config_map, "batch", timeout_seconds=1)
    )
    elapsed = time.monotonic() - started
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", ROOT_CA)]
    assert 0.9 <= elapsed < 5


async def test_timeout_seconds_ends_stream_async(av1: kubernetes_asyncio.client.CoreV1Api) -> None:
    await av1.create_namespaced_config_map("batch", _cm("a"))
    started = time.monotonic()
    async with kubernetes_asyncio.watch.Watch() as w:
        events = [
            e["type"]
            async for e in w.stream(av1.list_namespaced_config_map, "batch", timeout_seconds=1)
        ]
    assert events == ["ADDED", "ADDED"]  # a and kube-root-ca.crt
    assert 0.9 <= time.monotonic() - started < 5


def test_expired_resource_version_is_410_sync(
    simulated_cluster: Any, v1: kubernetes.client.CoreV1Api
) -> None:
    rv = v1.list_namespaced_config_map("batch").metadata.resource_version
    v1.create_namespaced_config_map("batch", _cm("after"))
    simulated_cluster.restart_api_server()
    with pytest.raises(ApiException) as err:
        list(
            kubernetes.watch.Watch().stream(
                v1.list_namespaced_config_map, "batch", resource_version=rv, timeout_seconds=5
            )
        )
    assert err.value.status == 410
    # The current version is still good.
    current = v1.list_namespaced_config_map("batch").metadata.resource_version
    w = SyncWatch(v1.list_namespaced_config_map, "batch", resource_version=current)
    v1.create_namespaced_config_map("batch", _cm("fresh"))
    assert w.until("fresh") == [("ADDED", "fresh")]


async def test_expired_resource_version_is_410_async(
    simulated_cluster: Any, av1: kubernetes_asyncio.client.CoreV1Api
) -> None:
    rv = (await av1.list_namespaced_config_map("batch")).metadata.resource_version
    await av1.create_namespaced_config_map("batch", _cm("after"))
    await asyncio.to_thread(simulated_cluster.restart_api_server)
    async with kubernetes_asyncio.watch.Watch() as w:
        stream = w.stream(
            av1.list_namespaced_config_map, "batch", resource_version=rv, timeout_seconds=5
        )
        with pytest.raises(kubernetes_asyncio.client.ApiException) as err:
            await asyncio.wait_for(stream.__anext__(), DEADLINE)
    assert err.value.status == 410
    assert "Expired" in str(err.value.reason)


# --- restarts and deletions behind the client's back --------------------------------------------


def test_restart_ends_open_watches_sync(
    simulated_cluster: Any, v1: kubernetes.client.CoreV1Api
) -> None:
    w = SyncWatch(v1.list_namespaced_config_map, "batch", timeout_seconds=60)
    simulated_cluster.wait_for(
        lambda: simulated_cluster.open_watches == 1, message="the watch to open"
    )
    simulated_cluster.restart_api_server()
    assert w.ended(DEADLINE), "the watch stream did not end on restart"
    assert w.until(ROOT_CA) == [("ADDED", ROOT_CA)]
    assert w.next() is None
    assert simulated_cluster.open_watches == 0


async def test_restart_ends_open_watches_async(
    simulated_cluster: Any, av1: kubernetes_asyncio.client.CoreV1Api
) -> None:
    async with kubernetes_asyncio.watch.Watch() as w:
        stream = w.stream(av1.list_namespaced_config_map, "batch", timeout_seconds=60)
        assert await _until_async(stream, ROOT_CA) == [("ADDED", ROOT_CA)]
        consumer = asyncio.ensure_future(asyncio.wait_for(stream.__anext__(), DEADLINE))
        await _wait_async(lambda: simulated_cluster.open_watches == 1, "the watch to open")
        await asyncio.to_thread(simulated_cluster.restart_api_server)
        with pytest.raises(StopAsyncIteration):
            await consumer


def test_delete_behind_the_back_sync(
    simulated_cluster: Any, v1: kubernetes.client.CoreV1Api
) -> None:
    v1.create_namespaced_config_map("batch", _cm("victim"))
    w = SyncWatch(v1.list_namespaced_config_map, "batch")
    assert w.until("victim") == [("ADDED", ROOT_CA), ("ADDED", "victim")]
    simulated_cluster.delete("configmaps", "batch", "victim")
    event = w.next()
    assert event is not None
    assert (event["type"], event["object"].metadata.name) == ("DELETED", "victim")
    assert simulated_cluster.get("configmaps", "batch", "victim") is None


async def test_delete_behind_the_back_async(
    simulated_cluster: Any, av1: kubernetes_asyncio.client.CoreV1Api
) -> None:
    await av1.create_namespaced_config_map("batch", _cm("victim"))
    async with kubernetes_asyncio.watch.Watch() as w:
        stream = w.stream(av1.list_namespaced_config_map, "batch", timeout_seconds=30)
        assert await _until_async(stream, "victim") == [("ADDED", ROOT_CA), ("ADDED", "victim")]
        await asyncio.to_thread(simulated_cluster.delete, "configmaps", "batch", "victim")
        event = await asyncio.wait_for(stream.__anext__(), DEADLINE)
        assert event["type"] == "DELETED"


def test_watch_counters_and_open_watches(
    simulated_cluster: Any, v1: kubernetes.client.CoreV1Api
) -> None:
    simulated_cluster.reset_counters()
    watches = [SyncWatch(v1.list_namespaced_pod, "batch", timeout_seconds=60) for _ in range(2)]
    simulated_cluster.wait_for(
        lambda: simulated_cluster.open_watches == 2, message="two open watches"
    )
    assert simulated_cluster.requests(verb="watch", resource="pods") == 2
    assert simulated_cluster.requests(verb="list", resource="pods") == 0
    assert simulated_cluster.counters.snapshot() == {"watch pods": 2}
    simulated_cluster.restart_api_server()
    assert all(w.ended() for w in watches)
    assert simulated_cluster.open_watches == 0
