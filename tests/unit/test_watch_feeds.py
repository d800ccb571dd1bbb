"""How a feed of all namespaces fills the caches of each namespace and takes over from the feeds
of single namespaces (the state driven directly, without a cluster)."""

from __future__ import annotations

from typing import Any

from airflow_k8s_jobs.kube import PODS
from airflow_k8s_jobs.watching import Feed, WatchKey

Obj = dict[str, Any]


class NoClients:
    async def async_api_client(self) -> Any:
        raise AssertionError("the feeds are driven directly here")

    async def arefresh_credentials(self, api_client: Any) -> None:
        raise AssertionError("the feeds are driven directly here")


def pod(namespace: str, name: str, phase: str = "Running") -> Obj:
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": f"{namespace}/{name}"},
        "status": {"phase": phase},
    }


def feed(namespace: str, **callbacks: Any) -> Feed:
    return Feed(WatchKey("c", namespace, PODS), NoClients(), api_client=None, **callbacks)


def phases(objects: dict[str, Obj]) -> dict[str, str]:
    return {name: o["status"]["phase"] for name, o in objects.items()}


def test_the_state_of_all_namespaces_goes_to_each_namespaces_cache() -> None:
    everywhere = feed("")
    a = everywhere.cache("a")
    assert not a.synced
    everywhere.replace([pod("a", "same"), pod("b", "same", "Pending"), pod("a", "other")])
    assert a.synced and phases(a.objects) == {"same": "Running", "other": "Running"}
    b = everywhere.cache("b")
    assert b.synced and phases(b.objects) == {"same": "Pending"}
    # A namespace without objects is known to be empty at once.
    c = everywhere.cache("c")
    assert c.synced and c.objects == {}
    assert {a.feed, b.feed, c.feed} == {everywhere}

    everywhere.apply("MODIFIED", pod("b", "same", "Succeeded"))
    everywhere.apply("ADDED", pod("c", "new"))
    everywhere.apply("DELETED", pod("a", "other"))
    assert phases(a.objects) == {"same": "Running"}
    assert phases(b.objects) == {"same": "Succeeded"}
    assert phases(c.objects) == {"new": "Running"}


def test_adopted_caches_are_taken_over_once_the_state_is_read() -> None:
    taken_over: list[tuple[Feed, set[Feed]]] = []
    own = feed("a")
    a = own.cache("a")
    own.replace([pod("a", "old")])
    everywhere = feed("", on_synced=lambda f, previous: taken_over.append((f, previous)))
    everywhere.adopt(a)
    # Until the feed of all namespaces has read the state, the namespace's own feed keeps it.
    assert a.feed is own
    own.apply("ADDED", pod("a", "while-starting"))
    assert set(a.objects) == {"old", "while-starting"}

    everywhere.replace([pod("a", "old"), pod("a", "while-starting"), pod("b", "elsewhere")])
    assert a.feed is everywhere
    assert taken_over == [(everywhere, {own})]
    assert set(a.objects) == {"old", "while-starting"}
    # A late event of the old feed no longer reaches the cache.
    own.apply("DELETED", pod("a", "old"))
    assert set(a.objects) == {"old", "while-starting"}


def test_a_failed_feed_fails_the_caches_it_keeps_and_later_ones() -> None:
    own = feed("a")
    a = own.cache("a")
    everywhere = feed("")
    everywhere.adopt(a)
    b = everywhere.cache("b")
    everywhere._fail(RuntimeError("gone"))
    assert b.synced and b._error is not None
    assert a._error is None, "the namespace's own feed still keeps it"
    assert everywhere.cache("c")._error is not None
